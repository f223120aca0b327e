//! A signed fixture archive of every distro of the catalog (all components and architectures,
//! a few tiny real .debs) served on 127.0.0.1, for API fuzzing and load scripts
//! (`scripts/fuzz-api.sh`). Prints `<url> <keyring>` on one line, then serves until stdin
//! closes or the process is killed.
//!
//!     cargo run -p opaas-server --example fixture_mirror

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{Read, Write};

fn main() {
    let fx = common::fixture_with(&common::all_distro_suites());
    {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{} {}", fx.server.url(), fx.keyring.display());
        let _ = out.flush();
    }
    // serve until stdin closes (the caller exits) or a signal ends us
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}
