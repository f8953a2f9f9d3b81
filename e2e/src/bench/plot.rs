//! PNG plots of suite results, drawn with `plotters`.
//!
//! Text is rendered with the DejaVu Sans font bundled in `e2e/assets/`
//! (through plotters' `ab_glyph` backend), so plotting needs no system font
//! library. Two kinds of chart:
//! - [`throughput_bars`]: throughput per workload, RingKV beside its peer;
//! - [`latency_cdf`]: latency against percentile, in "nines" (50 %, 90 %,
//!   99 %, 99.9 %, 99.99 %) on the x axis and a log latency axis.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const WIDTH: u32 = 960;
const HEIGHT: u32 = 540;
/// Tableau 10: distinguishable, colour-blind-friendlier than the primaries.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// plotters failed (drawing or encoding the PNG).
    #[error("drawing {path}: {reason}")]
    Draw {
        /// The file.
        path: String,
        /// plotters' message.
        reason: String,
    },
    /// Nothing to draw.
    #[error("{path}: no data to plot")]
    Empty {
        /// The file.
        path: String,
    },
}

fn font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The bundled font is valid; a failure would only mean unreadable labels.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

fn draw_error(path: &Path) -> impl Fn(String) -> PlotError + '_ {
    move |reason| PlotError::Draw { path: path.display().to_string(), reason }
}

/// One bar group: a category (workload) and one value per series.
#[derive(Debug, Clone)]
pub struct BarGroup {
    /// Category label.
    pub label: String,
    /// One value per series (same order as the series names); `None` = not measured.
    pub values: Vec<Option<f64>>,
}

/// Grouped bars: `series` (e.g. RingKV, Redis) side by side for each group.
pub fn throughput_bars(
    path: &Path,
    title: &str,
    series: &[String],
    groups: &[BarGroup],
    y_label: &str,
) -> Result<(), PlotError> {
    font();
    let err = draw_error(path);
    let max = groups.iter().flat_map(|g| g.values.iter().flatten()).fold(0.0_f64, |a, &b| a.max(b));
    if groups.is_empty() || max <= 0.0 {
        return Err(PlotError::Empty { path: path.display().to_string() });
    }
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let n = groups.len() as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..n, 0.0..max * 1.15)
        .map_err(|e| err(e.to_string()))?;
    let labels: Vec<String> = groups.iter().map(|g| g.label.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 1e-6 { labels.get(i).cloned().unwrap_or_default() } else { String::new() }
        })
        .y_desc(y_label)
        .y_label_formatter(&|y| format_count(*y))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let width = 0.8 / series.len().max(1) as f64;
    for (s, name) in series.iter().enumerate() {
        let color = PALETTE[s % PALETTE.len()];
        let bars = groups.iter().enumerate().filter_map(|(g, group)| {
            let value = group.values.get(s).copied().flatten()?;
            let x0 = g as f64 + 0.1 + width * s as f64;
            Some(Rectangle::new([(x0, 0.0), (x0 + width * 0.95, value)], color.filled()))
        });
        chart
            .draw_series(bars)
            .map_err(|e| err(e.to_string()))?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
        let values = groups.iter().enumerate().filter_map(|(g, group)| {
            let value = group.values.get(s).copied().flatten()?;
            let x = g as f64 + 0.1 + width * s as f64;
            Some(Text::new(format_count(value), (x, value + max * 0.02), ("sans-serif", 13)))
        });
        chart.draw_series(values).map_err(|e| err(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// One latency distribution: a name and `[quantile, latency µs]` points.
#[derive(Debug, Clone)]
pub struct CdfLine {
    /// Legend.
    pub name: String,
    /// Points, quantile ascending.
    pub points: Vec<[f64; 2]>,
}

/// The x coordinate of a quantile: its number of nines (0.9 → 1, 0.99 → 2), capped at 5.
fn nines(quantile: f64) -> f64 {
    if quantile >= 1.0 { 5.0 } else { (-(1.0 - quantile).log10()).min(5.0) }
}

/// Latency (ms, log scale) against percentile (in nines).
pub fn latency_cdf(path: &Path, title: &str, lines: &[CdfLine]) -> Result<(), PlotError> {
    font();
    let err = draw_error(path);
    let all = || lines.iter().flat_map(|l| l.points.iter());
    let max_ms = all().map(|p| p[1] / 1000.0).fold(0.0_f64, f64::max);
    let min_ms = all().map(|p| p[1] / 1000.0).filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    if !max_ms.is_finite() || max_ms <= 0.0 || !min_ms.is_finite() {
        return Err(PlotError::Empty { path: path.display().to_string() });
    }
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..5.0, ((min_ms * 0.8).max(0.001)..max_ms * 1.5).log_scale())
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_labels(6)
        .x_label_formatter(&|x: &f64| match x.round() as i64 {
            0 => "0%".into(),
            1 => "90%".into(),
            2 => "99%".into(),
            3 => "99.9%".into(),
            4 => "99.99%".into(),
            _ => "max".into(),
        })
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .y_label_formatter(&|y| format!("{y}"))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (i, line) in lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let points = line.points.iter().map(|p| (nines(p[0]), (p[1] / 1000.0).max(min_ms)));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(line.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// 1234567 → "1.23M", 45678 → "45.7k".
pub fn format_count(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2}M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1}k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_size(path: &Path) -> (u32, u32) {
        let bytes = std::fs::read(path).expect("png written");
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
        let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        (be(16), be(20))
    }

    #[test]
    fn bars_and_cdf_render_to_png() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bars = dir.path().join("bars.png");
        let groups = vec![
            BarGroup { label: "A".into(), values: vec![Some(9000.0), Some(99000.0)] },
            BarGroup { label: "C".into(), values: vec![Some(20000.0), None] },
        ];
        throughput_bars(&bars, "throughput", &["RingKV".into(), "Redis".into()], &groups, "ops/s").expect("bars");
        assert_eq!(png_size(&bars), (WIDTH, HEIGHT));

        let cdf = dir.path().join("cdf.png");
        let line = |name: &str, scale: f64| CdfLine {
            name: name.into(),
            points: (0..=32).map(|k| 1.0 - 10f64.powf(-f64::from(k) / 8.0)).map(|q| [q, scale * (1.0 + q)]).collect(),
        };
        latency_cdf(&cdf, "latency", &[line("a", 500.0), line("b", 2000.0)]).expect("cdf");
        assert_eq!(png_size(&cdf), (WIDTH, HEIGHT));
    }

    #[test]
    fn empty_data_is_an_error_not_a_blank_plot() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = throughput_bars(&dir.path().join("x.png"), "t", &["a".into()], &[], "ops/s").unwrap_err();
        assert!(matches!(err, PlotError::Empty { .. }));
        let err = latency_cdf(&dir.path().join("y.png"), "t", &[]).unwrap_err();
        assert!(matches!(err, PlotError::Empty { .. }));
    }

    #[test]
    fn nines_and_counts() {
        assert!((nines(0.99) - 2.0).abs() < 1e-9);
        assert_eq!(nines(1.0), 5.0);
        assert_eq!(format_count(45_678.0), "45.7k");
        assert_eq!(format_count(1_234_567.0), "1.23M");
        assert_eq!(format_count(12.0), "12");
    }
}
