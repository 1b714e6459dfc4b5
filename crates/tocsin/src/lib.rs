//! The `tocsin` binary's library: the server's wiring and worker loops
//! ([`app`]), and the commands that talk to a running server ([`client`]
//! connects, [`commands`] asks and prints).

pub mod app;
pub mod client;
pub mod commands;
