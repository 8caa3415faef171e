fn main() -> std::process::ExitCode {
    feedgate::cli::main()
}
