//! The report: medians over repetitions, the JSON summary, and the two
//! Markdown tables (the headline measures, ours against PeerJS, and every
//! metric of every target). Also the order statistics the scenarios use.

use serde_json::{json, Value};

use crate::args::{Args, Scenario, Target};
use crate::scenario::Metrics;
use crate::Res;

/// One scenario's result on one target in one repetition.
pub struct Sample {
    pub target: Target,
    pub scenario: Scenario,
    pub rep: usize,
    pub metrics: Metrics,
}

/// What the JSON records from before the first scenario runs.
pub struct Before {
    started_unix: u64,
    loadavg: String,
}

impl Before {
    pub fn now() -> Before {
        let started_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Before {
            started_unix,
            loadavg: read_trim("/proc/loadavg"),
        }
    }
}

/// Prints the JSON summary (and writes it to `--json-out`), then the tables.
pub fn output(args: &Args, before: Before, samples: &[Sample]) -> Res<()> {
    let load_after = read_trim("/proc/loadavg");
    let out = json!({
        "machine": {
            "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
            "cpu_model": cpu_model(),
            "kernel": read_trim("/proc/sys/kernel/osrelease"),
            "loadavg_before": before.loadavg,
            "loadavg_after": load_after,
        },
        "started_unix": before.started_unix,
        "config": {
            "reps": args.reps,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "pairs": args.pairs,
            "window": args.window,
            "latency_pairs": args.latency_pairs,
            "rate_per_s": args.rate,
            "payload_bytes": args.payload_bytes,
            "idle_conns": args.idle_conns,
            "connect_count": args.connect_count,
            "connect_concurrency": args.connect_concurrency,
            "server_threads": args.server_threads,
            "server_log": args.server_log,
        },
        "medians": summarize(args, samples),
        "samples": samples.iter().map(|s| json!({
            "target": s.target.name(),
            "scenario": s.scenario.name(),
            "rep": s.rep + 1,
            "metrics": s.metrics,
        })).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?;
    if let Some(path) = &args.json_out {
        std::fs::write(path, &text).map_err(|e| format!("write {}: {e}", path.display()))?;
    }
    println!("{text}");
    println!();
    print!("{}", tables(args, samples));
    Ok(())
}

pub fn pct(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Median over repetitions of every metric of a target, with all values.
fn med(samples: &[Sample], target: Target, metric: &str) -> Option<(f64, Vec<f64>)> {
    let mut v: Vec<f64> = samples
        .iter()
        .filter(|s| s.target == target)
        .filter_map(|s| s.metrics.get(metric).copied())
        .collect();
    if v.is_empty() {
        return None;
    }
    let all = v.clone();
    Some((median(&mut v), all))
}

/// Every metric any sample has, sorted.
fn metric_names(samples: &[Sample]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = samples
        .iter()
        .flat_map(|s| s.metrics.keys().copied())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

fn summarize(args: &Args, samples: &[Sample]) -> Value {
    let mut out = serde_json::Map::new();
    for name in metric_names(samples) {
        let mut entry = serde_json::Map::new();
        for &t in &args.targets {
            if let Some((m, all)) = med(samples, t, name) {
                entry.insert(t.name().into(), json!({ "median": m, "reps": all }));
            }
        }
        out.insert(name.into(), Value::Object(entry));
    }
    Value::Object(out)
}

/// The columns of the all-medians table; the headline has the first two.
const COLUMNS: [(Target, &str); 5] = [
    (Target::Ours, "mpc-signal"),
    (Target::Peerjs, "PeerJS 1.0.2"),
    (Target::Floor, "floor (bare epoll relay)"),
    (Target::Cluster, "cluster (2 instances + Redis)"),
    (Target::Matchbox, "matchbox_server 0.15"),
];

/// How a headline row's cells show a target's medians, and what its ratio
/// compares: how many times better mpc-signal is than PeerJS.
enum Cell {
    /// A cost: one metric, to so many decimals, then its unit; PeerJS / ours.
    Cost(&'static str, usize, &'static str),
    /// A rate, shown the same way; ours / PeerJS.
    Rate(&'static str, usize, &'static str),
    /// p50 / p99 latency; the ratio compares p99 (a cost) and says so.
    Latency,
    /// The list_peers round trip and reply size; no ratio.
    List,
}

/// A target's median of a metric, if it has one.
type Get<'a> = &'a dyn Fn(&str) -> Option<f64>;

impl Cell {
    /// The cell of a target, unit included; None where it lacks a metric.
    fn show(&self, m: Get) -> Option<String> {
        match *self {
            Cell::Cost(metric, places, unit) | Cell::Rate(metric, places, unit) => {
                Some(format!("{:.places$}{unit}", m(metric)?))
            }
            Cell::Latency => Some(format!(
                "{:.2} / {:.2} ms",
                m("lat_p50_ms")?,
                m("lat_p99_ms")?
            )),
            Cell::List => {
                let (rtt, bytes) = (m("list_rtt_ms")?, m("list_bytes")?);
                Some(format!("{rtt:.2} ms ({:.0} KB)", bytes / 1000.0))
            }
        }
    }
}

/// A row of the headline table.
struct Row {
    measure: String,
    goal: &'static str,
    cell: Cell,
}

impl Row {
    fn new(measure: String, goal: &'static str, cell: Cell) -> Row {
        Row {
            measure,
            goal,
            cell,
        }
    }
}

/// The headline measures, in the order the table lists them.
fn headline(args: &Args) -> [Row; 5] {
    let k = args.idle_conns / 1000;
    let window = if args.window > 1 {
        format!(", window {}", args.window)
    } else {
        String::new()
    };
    let cpu = format!(
        "server CPU per relayed {}-byte message ({} conns, {} pairs{window}, closed loop, {} worker thread)",
        args.payload_bytes,
        args.pairs * 2,
        args.pairs,
        args.server_threads,
    );
    let rss = format!("RSS per idle registered connection at {k}k");
    let lat = format!(
        "p50 / p99 latency at {}k msg/s open loop",
        args.rate / 1000.0
    );
    let connect = "connect rate (conn+register /s)".to_string();
    let list = format!("list_peers round trip with {k}k registered");
    [
        Row::new(cpu, "≤ 5 µs", Cell::Cost("cpu_us_per_msg", 2, " µs")),
        Row::new(rss, "≤ 5 KB", Cell::Cost("rss_kib_per_conn", 2, " KiB")),
        Row::new(lat, "p99 ≤ 2 ms", Cell::Latency),
        Row::new(connect, "—", Cell::Rate("connects_per_s", 0, "/s")),
        Row::new(list, "—", Cell::List),
    ]
}

/// The text after the JSON: the headline table, then all medians.
fn tables(args: &Args, samples: &[Sample]) -> String {
    let get = |t: Target, m: &str| med(samples, t, m).map(|(v, _)| v);
    let [(ours, ours_name), (peerjs, peerjs_name), ..] = COLUMNS;
    let times_better = |m: &str, cost: bool| match (get(ours, m), get(peerjs, m)) {
        (Some(o), Some(p)) if o > 0.0 && p > 0.0 => {
            format!("{:.1}×", if cost { p / o } else { o / p })
        }
        _ => "—".into(),
    };
    let cell = |c: &Cell, t: Target| c.show(&|m| get(t, m)).unwrap_or_else(|| "—".into());
    let ratio = |c: &Cell| match *c {
        Cell::Cost(metric, ..) => times_better(metric, true),
        Cell::Rate(metric, ..) => times_better(metric, false),
        Cell::Latency => times_better("lat_p99_ms", true) + " (p99)",
        Cell::List => String::new(),
    };
    let rows: Vec<Vec<String>> = headline(args)
        .into_iter()
        .map(|row| {
            let (o, p) = (cell(&row.cell, ours), cell(&row.cell, peerjs));
            vec![row.measure, row.goal.into(), o, p, ratio(&row.cell)]
        })
        .collect();
    let mut out = format!(
        "medians of {} repetitions; ratio = how many times better mpc-signal is\n\n",
        args.reps
    );
    let header = ["measure", "target", ours_name, peerjs_name, "ratio"];
    out += &table(&header, &rows);

    out += "\nall medians:\n\n";
    let rows: Vec<Vec<String>> = metric_names(samples)
        .into_iter()
        .map(|n| {
            let values = COLUMNS.iter().map(|&(t, _)| match med(samples, t, n) {
                Some((m, all)) => format!(
                    "{} [{}]",
                    num(m),
                    all.iter().map(|&v| num(v)).collect::<Vec<_>>().join(", ")
                ),
                None => "—".into(),
            });
            std::iter::once(n.to_string()).chain(values).collect()
        })
        .collect();
    let header: Vec<&str> = std::iter::once("metric")
        .chain(COLUMNS.iter().map(|&(_, name)| name))
        .collect();
    out += &table(&header, &rows);
    out
}

/// A Markdown table: the header, its rule, a line per row.
fn table<S: AsRef<str>>(header: &[&str], rows: &[Vec<S>]) -> String {
    let mut out = line(header);
    out += &format!("|{}\n", "---|".repeat(header.len()));
    for r in rows {
        out += &line(r);
    }
    out
}

/// One line of a Markdown table; an empty cell is written `| |`.
fn line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut s = String::from("|");
    for c in cells.iter().map(AsRef::as_ref) {
        if !c.is_empty() {
            s += " ";
            s += c;
        }
        s += " |";
    }
    s + "\n"
}

fn num(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// One line of `name=value` pairs, for the progress on stderr.
pub fn fmt_metrics(m: &Metrics) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={}", num(*v)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn read_trim(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn cpu_model() -> String {
    read_trim("/proc/cpuinfo")
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn percentiles_and_medians() {
        let v: Vec<u64> = (1..=1000).collect();
        assert_eq!(pct(&v, 0.5), 500);
        assert_eq!(pct(&v, 0.99), 990);
        assert_eq!(pct(&v, 1.0), 1000);
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    // The text the tables had before they were built from rows, for the
    // same numbers: BENCHMARKS.md and bench/run.sh's signal.md quote it.
    #[test]
    fn tables_keep_their_text() {
        let args = Args::parse_from(["mpc-bench", "--reps=2"]);
        let sample = |target, rep, metrics: &[(&'static str, f64)]| Sample {
            target,
            scenario: Scenario::Cpu,
            rep,
            metrics: metrics.iter().copied().collect(),
        };
        let samples = [
            sample(
                Target::Ours,
                0,
                &[("cpu_us_per_msg", 2.5), ("connects_per_s", 9000.0)],
            ),
            sample(Target::Ours, 1, &[("cpu_us_per_msg", 3.5)]),
            sample(
                Target::Peerjs,
                0,
                &[
                    ("cpu_us_per_msg", 12.0),
                    ("lat_p50_ms", 0.5),
                    ("lat_p99_ms", 1.25),
                ],
            ),
            sample(
                Target::Floor,
                0,
                &[("list_rtt_ms", 3.0), ("list_bytes", 250000.0)],
            ),
        ];
        let text = tables(&args, &samples);
        let expected = "medians of 2 repetitions; ratio = how many times better mpc-signal is\n\
            \n\
            | measure | target | mpc-signal | PeerJS 1.0.2 | ratio |\n\
            |---|---|---|---|---|\n\
            | server CPU per relayed 200-byte message (1000 conns, 500 pairs, closed loop, 1 worker thread) | ≤ 5 µs | 3.00 µs | 12.00 µs | 4.0× |\n\
            | RSS per idle registered connection at 10k | ≤ 5 KB | — | — | — |\n\
            | p50 / p99 latency at 12k msg/s open loop | p99 ≤ 2 ms | — | 0.50 / 1.25 ms | — (p99) |\n\
            | connect rate (conn+register /s) | — | 9000/s | — | — |\n\
            | list_peers round trip with 10k registered | — | — | — | |\n\
            \n\
            all medians:\n\
            \n\
            | metric | mpc-signal | PeerJS 1.0.2 | floor (bare epoll relay) | cluster (2 instances + Redis) | matchbox_server 0.15 |\n\
            |---|---|---|---|---|---|\n\
            | connects_per_s | 9000 [9000] | — | — | — | — |\n\
            | cpu_us_per_msg | 3.00 [2.50, 3.50] | 12.00 [12.00] | — | — | — |\n\
            | lat_p50_ms | — | 0.500 [0.500] | — | — | — |\n\
            | lat_p99_ms | — | 1.25 [1.25] | — | — | — |\n\
            | list_bytes | — | — | 250000 [250000] | — | — |\n\
            | list_rtt_ms | — | — | 3.00 [3.00] | — | — |\n";
        assert_eq!(text, expected);
    }
}
