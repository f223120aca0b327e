//! Ready-made fixture archives shared by the tests of several crates.

use crate::{Package, Suite};

/// Debian 12's three pockets with a small, meaningful set:
/// - `bookworm`: `hello 1.0` (Depends `libhello1 (>= 1.0)`), `libhello1 1.0`, `hello-doc 1.0`
///   (all), `broken` (Depends a missing `libmissing`), `clash` (Conflicts `hello`);
/// - `bookworm-updates`: `libhello1 1.1`;
/// - `bookworm-security`: `hello 1.0+deb12u1` (Depends `libhello1 (>= 1.1)`, Recommends
///   `hello-doc`).
///
/// Every package has a real .deb. Callers may add packages to the returned suites.
pub fn debian12_hello() -> Vec<Suite> {
    let hello_bin = b"#!/bin/sh\necho hello\n";
    let describe = "greets the world\n a friendly program";
    let release = Suite::new("bookworm")
        .package(
            "main",
            Package::new("hello", "1.0", "amd64")
                .depends("libhello1 (>= 1.0)")
                .field("Description", describe)
                .deb_file("/usr/bin/hello", hello_bin),
        )
        .package("main", Package::new("libhello1", "1.0", "amd64").with_deb())
        .package("main", Package::new("hello-doc", "1.0", "all").with_deb())
        .package(
            "main",
            Package::new("broken", "1.0", "amd64")
                .depends("libmissing (>= 2)")
                .with_deb(),
        )
        .package(
            "main",
            Package::new("clash", "1.0", "amd64")
                .conflicts("hello")
                .with_deb(),
        );
    let updates = Suite::new("bookworm-updates")
        .package("main", Package::new("libhello1", "1.1", "amd64").with_deb());
    let security = Suite::new("bookworm-security").package(
        "main",
        Package::new("hello", "1.0+deb12u1", "amd64")
            .depends("libhello1 (>= 1.1)")
            .recommends("hello-doc")
            .field("Description", describe)
            .deb_file("/usr/bin/hello", hello_bin),
    );
    vec![release, updates, security]
}
