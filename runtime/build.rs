fn main() {
    // RELR packs the binary's relative relocations (glibc 2.36+, binutils
    // 2.38+): fewer pages for the loader to dirty at every start.
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}
