//! `fake-agent`: a stand-in AI coding CLI for tests, benchmarks and the demo (see `pm_sim::fake_agent`).
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(pm_sim::fake_agent::run(args));
}
