//! Issue 11's pool figure: starting one unit with `instances: 100` against
//! 100 separate units of the same definition. See ../../run.

use super::*;

/// One `tend up` of `dir`: spawn → the 100th `started (pid` line, and
/// tend's RSS once they all run. `None` (with a note) when it failed.
fn start_100(cfg: &Cfg, dir: &Path, notes: &mut Vec<String>) -> Option<(f64, Option<f64>)> {
    let (mut t, t0) = Tend::up(&cfg.tend, dir);
    let mut last = None;
    for i in 0..100 {
        match t.next_started(Duration::from_secs(10)) {
            Some((t1, _)) => last = Some(t1),
            None => {
                notes.push(t.fail(&format!("{}: only {i} of 100 started within 10 s", dir.display())));
                let _ = t.terminate();
                return None;
            }
        }
    }
    let elapsed = ms(last? - t0);
    let rss = status_field(&format!("/proc/{}/status", t.pid()), "VmRSS").map(|kb| kb as f64 / 1024.0);
    let (_, _, left) = t.terminate();
    if left > 0 {
        notes.push(format!("{}: {left} services still running right after tend up exited", dir.display()));
    }
    Some((elapsed, rss))
}

pub fn pool(cfg: &Cfg, rows: &mut Vec<Row>, notes: &mut Vec<String>) {
    let units = make_units(&cfg.tmp, "units100", 100, SLEEP_UNIT);
    let pool = cfg.tmp.join("pool100");
    let _ = fs::remove_dir_all(&pool);
    fs::create_dir_all(&pool).unwrap();
    fs::write(pool.join("worker.yaml"), format!("{SLEEP_UNIT}instances: 100\n")).unwrap();
    let (mut pooled, mut separate, mut pool_rss, mut units_rss) = (vec![], vec![], vec![], vec![]);
    for run in 0..cfg.runs {
        eprintln!("harness: a pool of 100 against 100 units, run {}/{}", run + 1, cfg.runs);
        // Interleaved, and the order swapped every run: neither always
        // comes first after a quiet moment.
        let order: [(&Path, bool); 2] =
            if run % 2 == 0 { [(&pool, true), (&units, false)] } else { [(&units, false), (&pool, true)] };
        for (dir, is_pool) in order {
            thread::sleep(Duration::from_millis(100));
            let Some((elapsed, rss)) = start_100(cfg, dir, notes) else { continue };
            let (times, sizes) =
                if is_pool { (&mut pooled, &mut pool_rss) } else { (&mut separate, &mut units_rss) };
            times.push(elapsed);
            sizes.extend(rss);
        }
    }
    let _ = fs::remove_dir_all(&units);
    let _ = fs::remove_dir_all(&pool);
    notes.push(format!(
        "tend's RSS with them running: pool {}, 100 units {}",
        fmt_stat(&pool_rss, 2, "MiB"),
        fmt_stat(&units_rss, 2, "MiB")
    ));
    if pooled.is_empty() || separate.is_empty() {
        return;
    }
    let (p, u) = (median(&pooled), median(&separate));
    rows.push(Row {
        figure: format!(
            "`tend up` spawn → 100th `started (pid` line, one unit with `instances: 100`{}",
            cfg.host_label()
        ),
        tend: fmt_stat(&pooled, 2, "ms"),
        reference: format!("100 separate units of the same definition: {}", fmt_stat(&separate, 2, "ms")),
        ratio: format!("{:.2}×", p / u),
        target: "the same (≤ 1.1×)".into(),
        verdict: verdict(p <= 1.1 * u),
    });
}
