//! The suite's markdown report: the broadcast table, the cluster and ratio
//! tables, publish round trips, channels, connecting with tokens, targets.

use super::{Collected, Suite};
use crate::report::{self, Summary};
use crate::{channels, connect, rtt};

/// The whole report.
pub(super) fn markdown(suite: &Suite, out: &Collected, verdicts: &[report::Verdict]) -> String {
    let m = &suite.machine;
    let mut md = format!(
        "## wspush vs nginx + Nchan ({} CPUs, {:.0} GiB, Linux {}, {}; {} round(s), medians; bench runtime {} threads)\n\n",
        m.cpus, m.memory_gib, m.kernel, m.nginx, suite.rounds, m.client_threads
    );
    if !out.load.is_empty() {
        md.push_str(&report::table(&out.load));
    }
    let cluster: Vec<Summary> = out
        .load
        .iter()
        .filter(|s| s.scenario.starts_with("cluster-"))
        .cloned()
        .collect();
    if !cluster.is_empty() {
        md.push_str("\n### Two nodes through Redis vs one node (same 10,000 clients)\n\n");
        md.push_str(&report::cluster_table(&cluster));
    }
    if !out.versus_nchan.is_empty() {
        md.push_str("\n### wspush ÷ Nchan (below 1.00× is better for wspush, except deliveries/s)\n\n");
        md.push_str(&report::ratio_table(&out.versus_nchan));
    }
    if !out.versus_baseline.is_empty() {
        md.push_str(&format!(
            "\n### wspush ÷ {} (below 1.00× is better for this build, except deliveries/s)\n\n",
            suite.common.baseline_name()
        ));
        md.push_str(&report::ratio_table(&out.versus_baseline));
    }
    md.push_str(&rtt::tables(&out.rtt));
    md.push_str(&channels::tables(&out.channels));
    md.push_str(&connect::tables(&out.connect));
    if !verdicts.is_empty() {
        md.push_str("\n### Targets\n\n");
        md.push_str(&report::verdict_table(verdicts));
    }
    md.push_str(&format!(
        "\nWhole run: {:.0} s. JSON per scenario in {}/.\n",
        suite.started.elapsed().as_secs_f64(),
        suite.common.out.display()
    ));
    md
}
