//! Percentiles, medians and the Markdown tables.

/// p50, p99 and max of a sample, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub count: usize,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    pub fn of(samples: &[f64]) -> Latency {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Latency {
            count: sorted.len(),
            p50: percentile(&sorted, 0.50),
            p99: percentile(&sorted, 0.99),
            max: sorted.last().copied().unwrap_or(f64::NAN),
        }
    }
}

/// Nearest-rank percentile of sorted samples; NaN for none.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median of the values (mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A Markdown table: one row per run and a median row, each column a figure with the
/// number of decimals it is shown with.
pub struct Table {
    pub columns: Vec<(&'static str, usize)>,
    pub rows: Vec<Vec<f64>>,
}

impl Table {
    pub fn render(&self) -> String {
        let mut out = String::from("| run |");
        for (name, _) in &self.columns {
            out.push_str(&format!(" {name} |"));
        }
        out.push_str("\n| --- |");
        for _ in &self.columns {
            out.push_str(" ---: |");
        }
        out.push('\n');
        let cell = |value: f64, decimals: usize| {
            if value.is_nan() {
                "—".to_owned()
            } else {
                group(&format!("{value:.decimals$}"))
            }
        };
        for (i, row) in self.rows.iter().enumerate() {
            out.push_str(&format!("| {} |", i + 1));
            for (value, (_, decimals)) in row.iter().zip(&self.columns) {
                out.push_str(&format!(" {} |", cell(*value, *decimals)));
            }
            out.push('\n');
        }
        out.push_str("| **median** |");
        for (c, (_, decimals)) in self.columns.iter().enumerate() {
            let column: Vec<f64> = self.rows.iter().map(|r| r[c]).collect();
            out.push_str(&format!(" **{}** |", cell(median(&column), *decimals)));
        }
        out.push('\n');
        out
    }
}

/// Thousands separators for the integer part ("52341.5" → "52,341.5").
fn group(number: &str) -> String {
    let (sign, digits) = match number.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", number),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (digits, None),
    };
    if int.len() < 5 {
        return number.to_owned();
    }
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match frac {
        Some(frac) => format!("{sign}{grouped}.{frac}"),
        None => format!("{sign}{grouped}"),
    }
}
