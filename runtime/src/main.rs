use clap::Parser;

fn main() {
    let cli = fdbox::cli::Cli::parse();
    let code = match fdbox::cli::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            fdbox::log::error(&e.to_string());
            1
        }
    };
    std::process::exit(code)
}
