//! Integration tests over HTTP: each test starts the real server on a random
//! port with a fresh SQLite file in a temp dir (see `helpers::spawn_app`).

mod auth;
mod bank;
mod classroom;
mod docs;
mod errors;
mod grading;
mod health;
mod helpers;
mod openapi;
mod persistence;
mod reliability;
mod variants;
#[path = "../common/wrong_keys.rs"]
mod wrong_keys;
