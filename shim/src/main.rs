fn main() {
    fdbox_shim::main()
}
