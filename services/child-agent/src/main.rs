mod clock;
mod config;
mod enforcer;
mod meter;
mod shutdown;
mod source;
mod store;

fn main() {}
