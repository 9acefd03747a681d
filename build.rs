//! Compiles the weak `skynet_error` fallback and regenerates `include/socket_server.h`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi/skynet_error_fallback.c");
    println!("cargo:rerun-if-changed=src/ffi/types.rs");
    println!("cargo:rerun-if-changed=src/ffi/entry.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    cc::Build::new()
        .file("src/ffi/skynet_error_fallback.c")
        .flag_if_supported("-fvisibility=default")
        .compile("skynet_error_fallback");

    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let config =
        cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cbindgen.toml parses");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/ffi/types.rs"))
        .with_src(root.join("src/ffi/entry.rs"))
        .generate()
        .expect("cbindgen generates the header");
    // write_to_file leaves the file alone when nothing changed, so no rebuild loop.
    bindings.write_to_file(root.join("include/socket_server.h"));
}
