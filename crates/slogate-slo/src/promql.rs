//! PromQL text for SLIs, shared by rules, dashboards and reports so all three
//! always agree.

use std::collections::BTreeMap;

use crate::decimal::Decimal;
use crate::model::{Indicator, Operation, RatioEvents, Selection, Slo, Source};

/// The placeholder raw (OpenSLO) queries use for the range.
pub(crate) const WINDOW_PLACEHOLDERS: [&str; 2] = ["{{.window}}", "{{ .window }}"];

/// Outcomes counted by latency objectives.
const LATENCY_OUTCOMES: &str = r#"outcome=~"success|client_error""#;

/// The range function used for an error ratio.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeFn {
    /// `rate(...)`: the short alerting windows.
    Rate,
    /// `increase(...)`: the period window (same ratio, reads as a count).
    Increase,
}

impl RangeFn {
    fn name(self) -> &'static str {
        match self {
            RangeFn::Rate => "rate",
            RangeFn::Increase => "increase",
        }
    }
}

/// Quotes a label value for PromQL.
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str(r"\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str(r"\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Escapes RE2 metacharacters so a name matches literally.
fn regex_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `label="v"` for one value, `label=~"a|b"` for several.
fn name_matcher(label: &str, names: &[String]) -> String {
    match names {
        [single] => format!("{label}={}", quote(single)),
        _ => {
            let alternatives: Vec<String> = names.iter().map(|n| regex_escape(n)).collect();
            format!("{label}=~{}", quote(&alternatives.join("|")))
        }
    }
}

/// The `le` matcher for a bucket boundary. Integer boundaries also match the
/// `1.0` spelling Prometheus 3 normalises classic histograms to.
pub(crate) fn le_matcher(threshold: Decimal) -> String {
    let text = threshold.to_string();
    if text.contains('.') {
        format!("le={}", quote(&text))
    } else {
        format!("le=~{}", quote(&format!(r"{text}(\.0)?")))
    }
}

/// `{sloth_id="…", sloth_service="…", sloth_slo="…"}`.
pub(crate) fn sloth_filter(slo: &Slo) -> String {
    format!(
        "{{sloth_id={}, sloth_service={}, sloth_slo={}}}",
        quote(&slo.id()),
        quote(&slo.service),
        quote(&slo.name)
    )
}

impl Selection {
    /// Label matchers for each group of operations that share kind, type or
    /// queue; the groups are combined with `or`.
    fn groups(&self, service: &str) -> Vec<Vec<String>> {
        let mut grouped: BTreeMap<Vec<String>, (&'static str, Vec<String>)> = BTreeMap::new();
        for op in &self.operations {
            let (key, label, name) = match op {
                Operation::GraphQl {
                    name,
                    operation_type,
                } => {
                    let mut key = vec![r#"kind="graphql""#.to_string()];
                    if let Some(t) = operation_type {
                        key.push(format!("operation_type={}", quote(t)));
                    }
                    (key, "operation", name)
                }
                Operation::Http { route } => {
                    (vec![r#"kind="http""#.to_string()], "operation", route)
                }
                Operation::Job { class, queue } => {
                    let key = queue
                        .iter()
                        .map(|q| format!("queue={}", quote(q)))
                        .collect();
                    (key, "job_class", class)
                }
            };
            let entry = grouped.entry(key).or_insert((label, Vec::new()));
            if !entry.1.contains(name) {
                entry.1.push(name.clone());
            }
        }
        grouped
            .into_iter()
            .map(|(key, (label, names))| {
                let mut matchers = vec![format!("service={}", quote(service))];
                matchers.extend(key);
                matchers.push(name_matcher(label, &names));
                matchers
            })
            .collect()
    }

    /// `metric{…}` for each group, with `extra` matchers appended.
    fn vectors(&self, service: &str, metric: &str, extra: &[&str]) -> Vec<String> {
        self.groups(service)
            .into_iter()
            .map(|mut matchers| {
                matchers.extend(extra.iter().map(|m| m.to_string()));
                format!("{metric}{{{}}}", matchers.join(","))
            })
            .collect()
    }

    /// `func(v1[w]) or func(v2[w])`.
    fn ranged(
        &self,
        service: &str,
        metric: &str,
        extra: &[&str],
        func: &str,
        window: &str,
    ) -> String {
        self.vectors(service, metric, extra)
            .iter()
            .map(|v| format!("{func}({v}[{window}])"))
            .collect::<Vec<_>>()
            .join(" or ")
    }

    /// `sum(func(v1[w]) or func(v2[w]))`.
    fn summed(
        &self,
        service: &str,
        metric: &str,
        extra: &[&str],
        func: &str,
        window: &str,
    ) -> String {
        format!("sum({})", self.ranged(service, metric, extra, func, window))
    }

    /// Per-outcome request (or job) rate, for dashboards.
    pub(crate) fn rate_by_outcome(&self, service: &str, window: &str) -> String {
        format!(
            "sum by (outcome) ({})",
            self.ranged(service, self.source.counter(), &[], "rate", window)
        )
    }

    /// Share of `system_error` and `client_error` among all but `canceled`,
    /// per outcome, for dashboards.
    pub(crate) fn error_share_by_outcome(&self, service: &str, window: &str) -> String {
        let counter = self.source.counter();
        format!(
            "{}\n/ ignoring (outcome) group_left\n{}",
            format_args!(
                "sum by (outcome) ({})",
                self.ranged(
                    service,
                    counter,
                    &[r#"outcome=~"system_error|client_error""#],
                    "rate",
                    window
                )
            ),
            self.summed(
                service,
                counter,
                &[r#"outcome!="canceled""#],
                "rate",
                window
            )
        )
    }

    /// A latency quantile over `success` and `client_error`, for dashboards.
    pub(crate) fn latency_quantile(&self, service: &str, quantile: &str, window: &str) -> String {
        let bucket = format!("{}_bucket", self.source.histogram());
        format!(
            "histogram_quantile({quantile}, sum by (le) ({}))",
            self.ranged(service, &bucket, &[LATENCY_OUTCOMES], "rate", window)
        )
    }

    /// `absent(...)` of the series an objective reads.
    fn absent(&self, service: &str, metric: &str) -> String {
        format!(
            "absent(sum({}))",
            self.vectors(service, metric, &[]).join(" or ")
        )
    }
}

/// `sum(query)`, unless the query already is one `sum(...)` call.
fn summed_query(query: &str) -> String {
    if is_single_sum(query) {
        query.to_string()
    } else {
        format!("sum({query})")
    }
}

/// Whether `query` is `sum(...)` with the first parenthesis closing at the
/// very end (quoted strings skipped).
fn is_single_sum(query: &str) -> bool {
    let Some(rest) = query.strip_prefix("sum(") else {
        return false;
    };
    let mut depth = 1usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                c if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1 == rest.len();
                }
            }
            _ => {}
        }
    }
    false
}

/// Replaces `{{.window}}` in a raw query.
fn with_window(query: &str, window: &str) -> String {
    WINDOW_PLACEHOLDERS
        .iter()
        .fold(query.to_string(), |q, placeholder| {
            q.replace(placeholder, window)
        })
}

impl Slo {
    /// The SLI error ratio over `window` (bad events / total events).
    ///
    /// Weighted by traffic, and NaN-safe: with no traffic the result is empty
    /// rather than NaN, and a missing bad-events series counts as zero.
    pub fn error_ratio_expr(&self, func: RangeFn, window: &str) -> String {
        let service = &self.service;
        let f = func.name();
        match &self.indicator {
            Indicator::Availability(sel) => {
                let counter = sel.source.counter();
                let bad = sel.summed(service, counter, &[r#"outcome="system_error""#], f, window);
                let total = sel.summed(service, counter, &[r#"outcome!="canceled""#], f, window);
                format!("({bad} or vector(0))\n/\n({total} > 0)\n")
            }
            Indicator::Latency {
                selection,
                threshold,
            } => {
                let hist = selection.source.histogram();
                let count_metric = format!("{hist}_count");
                let bucket_metric = format!("{hist}_bucket");
                let le = le_matcher(*threshold);
                let total =
                    selection.summed(service, &count_metric, &[LATENCY_OUTCOMES], f, window);
                let good =
                    selection.summed(service, &bucket_metric, &[LATENCY_OUTCOMES, &le], f, window);
                format!("({total} - ({good} or vector(0)))\n/\n({total} > 0)\n")
            }
            Indicator::Ratio { events, total } => {
                let total = summed_query(&with_window(total, window));
                match events {
                    RatioEvents::Bad(bad) => format!(
                        "({} or vector(0))\n/\n({total} > 0)\n",
                        summed_query(&with_window(bad, window))
                    ),
                    RatioEvents::Good(good) => format!(
                        "({total} - ({} or vector(0)))\n/\n({total} > 0)\n",
                        summed_query(&with_window(good, window))
                    ),
                }
            }
        }
    }

    /// The number (or rate) of events the SLO counts over `window`; `None`
    /// for raw OpenSLO queries.
    pub fn total_events_expr(&self, func: RangeFn, window: &str) -> Option<String> {
        let f = func.name();
        match &self.indicator {
            Indicator::Availability(sel) => Some(sel.summed(
                &self.service,
                sel.source.counter(),
                &[r#"outcome!="canceled""#],
                f,
                window,
            )),
            Indicator::Latency { selection, .. } => Some(selection.summed(
                &self.service,
                &format!("{}_count", selection.source.histogram()),
                &[LATENCY_OUTCOMES],
                f,
                window,
            )),
            Indicator::Ratio { total, .. } => Some(summed_query(&with_window(total, window))),
        }
    }

    /// An expression that returns 1 when the SLO's metrics are missing.
    pub fn absent_expr(&self) -> String {
        match &self.indicator {
            Indicator::Availability(sel) => sel.absent(&self.service, sel.source.counter()),
            Indicator::Latency { selection, .. } => selection.absent(
                &self.service,
                &format!("{}_count", selection.source.histogram()),
            ),
            Indicator::Ratio { total, .. } => format!("absent({})", with_window(total, "5m")),
        }
    }

    /// The selection of slogate metrics, when the SLO reads them.
    pub fn selection(&self) -> Option<&Selection> {
        match &self.indicator {
            Indicator::Availability(sel) | Indicator::Latency { selection: sel, .. } => Some(sel),
            Indicator::Ratio { .. } => None,
        }
    }
}

/// A selection of one operation, for per-operation dashboard rows.
pub(crate) fn single(source: Source, op: &Operation) -> Selection {
    Selection {
        source,
        operations: vec![op.clone()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(regex_escape("GET /a/(x).json"), r"GET /a/\(x\)\.json");
        assert_eq!(
            name_matcher("operation", &["GET /x.json".into(), "B".into()]),
            r#"operation=~"GET /x\\.json|B""#
        );
    }

    #[test]
    fn wraps_raw_queries_in_sum_once() {
        assert!(is_single_sum("sum(rate(x[5m]))"));
        assert!(is_single_sum(r#"sum(rate(x{a=")("}[5m]))"#));
        assert!(!is_single_sum("sum(rate(x[5m])) / sum(rate(y[5m]))"));
        assert!(!is_single_sum("sum by (a) (rate(x[5m]))"));
        assert_eq!(summed_query("rate(x[5m])"), "sum(rate(x[5m]))");
    }

    #[test]
    fn le_matches_both_spellings_of_integers() {
        let d = |s| Decimal::parse(s).expect("decimal");
        assert_eq!(le_matcher(d("0.3")), r#"le="0.3""#);
        assert_eq!(le_matcher(d("1")), r#"le=~"1(\\.0)?""#);
    }
}
