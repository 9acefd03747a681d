//! Compiles the weak `skynet_error` fallback and regenerates `include/socket_server.h`.

use std::env;
use std::path::PathBuf;

/// Systems whose C compiler a Linux (or other) host usually lacks: cc-rs would run the host's
/// `cc`, which cannot emit Mach-O or target FreeBSD's ABI.
const CLANG_WHEN_CROSS: &[&str] = &["macos", "ios", "freebsd", "openbsd", "netbsd", "dragonfly"];

fn main() {
    println!("cargo:rerun-if-changed=src/ffi/skynet_error_fallback.c");
    println!("cargo:rerun-if-changed=src/ffi/types.rs");
    println!("cargo:rerun-if-changed=src/ffi/entry.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");

    let mut fallback = cc::Build::new();
    fallback.file("src/ffi/skynet_error_fallback.c");
    if cross_needs_clang() {
        // The file includes only clang's own headers, so no SDK or sysroot is needed; keep the
        // host's /usr/include out so nothing of the host's libc leaks into the object.
        fallback.compiler("clang").flag("-nostdlibinc");
    }
    fallback
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

/// True when building from one OS for a BSD or Apple one and nobody named a C compiler for the
/// target. cc-rs gives clang the matching `--target`. A plain `CC` is left out on purpose: it
/// names the host's compiler (make and CI set it), which cannot build for these systems.
fn cross_needs_clang() -> bool {
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let target_os = env::var("CARGO_CFG_TARGET_OS").expect("cargo sets CARGO_CFG_TARGET_OS");
    let named = [
        format!("CC_{target}"),
        format!("CC_{}", target.replace('-', "_")),
        "TARGET_CC".to_owned(),
    ];
    for var in &named {
        println!("cargo:rerun-if-env-changed={var}");
    }
    // The build script runs on the host, so its own OS is the host's.
    target_os != env::consts::OS
        && CLANG_WHEN_CROSS.contains(&target_os.as_str())
        && !named.iter().any(|var| env::var_os(var).is_some())
}
