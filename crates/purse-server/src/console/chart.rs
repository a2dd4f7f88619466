//! The balance chart of the account page: the after-balance of each of the account's flows, in
//! log order, one polyline per bucket (REAL, GIFT, PRE) and one for TOTAL, drawn on the server
//! as inline SVG with axes, labels and a legend.
//!
//! Every coordinate is a whole pixel computed from minor units in `i128` with half-up
//! division: no floating point (the workspace denies float arithmetic), and no amount is ever
//! turned into anything but its decimal text for a label. The x axis is the flow's position
//! in the log, not its time: flows of the same second stay apart, and a backdated flow does not
//! draw the line backwards.

use purse_core::{Amount, Buckets, Property, Scale};

use super::html::escape;

/// The whole picture, in pixels.
const WIDTH: i64 = 1000;
const HEIGHT: i64 = 340;
/// Room for the amount labels (left), the legend (top), flow ids and times (bottom).
const MARGIN_LEFT: i64 = 88;
const MARGIN_RIGHT: i64 = 20;
const MARGIN_TOP: i64 = 36;
const MARGIN_BOTTOM: i64 = 56;
/// Grid lines above zero on the amount axis, at most.
const AMOUNT_TICKS: i128 = 4;
/// Flow id labels on the x axis, at most.
const FLOW_TICKS: usize = 6;
/// Up to this many flows, each point also gets a dot (a single flow has no line to draw).
const DOTS_FLOWS_MAX: usize = 60;

const PLOT_WIDTH: i64 = WIDTH - MARGIN_LEFT - MARGIN_RIGHT;
const PLOT_HEIGHT: i64 = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM;
const _: () = assert!(PLOT_WIDTH > 0 && PLOT_HEIGHT > 0);

/// One flow of the chart: where it is and the balance after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    pub flow_id: u64,
    /// Its order_time, as the ledger writes it.
    pub time: String,
    pub after: Buckets,
}

/// The line of each property: its colour, and whether it is dashed (TOTAL, the derived one).
const LINES: [(Property, &str, bool); 4] = [
    (Property::Real, "#1f62a8", false),
    (Property::Gift, "#2e9e4f", false),
    (Property::Pre, "#d9822b", false),
    (Property::Total, "#1d2733", true),
];

/// Where values land: `count` points across, `[low, high]` minor units up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Frame {
    count: usize,
    low: i128,
    high: i128,
}

impl Frame {
    /// The x of the point at `index`: spread over the plot's width, one point in its middle.
    fn x(&self, index: usize) -> i64 {
        if self.count < 2 {
            return MARGIN_LEFT + PLOT_WIDTH / 2;
        }
        let span = to_i128(self.count - 1);
        MARGIN_LEFT + to_pixels(divide_half_up(to_i128(index) * i128::from(PLOT_WIDTH), span))
    }

    /// The y of `minor`: `low` on the bottom of the plot, `high` on its top (SVG's y grows down).
    fn y(&self, minor: i128) -> i64 {
        let span = self.high - self.low;
        let clamped = minor.clamp(self.low, self.high);
        let up = divide_half_up((clamped - self.low) * i128::from(PLOT_HEIGHT), span);
        MARGIN_TOP + PLOT_HEIGHT - to_pixels(up)
    }
}

/// A property's value in minor units; TOTAL summed wide (it cannot overflow there).
fn value(after: &Buckets, property: Property) -> i128 {
    let minor = |amount: Amount| i128::from(amount.minor());
    match property {
        Property::Real => minor(after.real),
        Property::Gift => minor(after.gift),
        Property::Pre => minor(after.pre),
        Property::Total => minor(after.real) + minor(after.gift) + minor(after.pre),
    }
}

/// The amount axis for values up to `max` (minor units): its step, the smallest of 1, 2 or 5
/// times a power of ten that covers `max` in [`AMOUNT_TICKS`] steps, and its top, a whole number
/// of steps at or above `max` (at least one step, so an all-zero chart still has an axis).
fn amount_axis(max: i128) -> (i128, i128) {
    let wanted = ((max.max(0) + AMOUNT_TICKS - 1) / AMOUNT_TICKS).max(1);
    let mut power: i128 = 1;
    let step = loop {
        if let Some(step) = [1, 2, 5].into_iter().map(|factor| factor * power).find(|step| *step >= wanted) {
            break step;
        }
        power *= 10;
    };
    let top = ((max.max(0) + step - 1) / step * step).max(step);
    (step, top)
}

/// The `points` attribute of one line: `x,y` pairs separated by spaces.
fn polyline_points(frame: &Frame, values: &[i128]) -> String {
    let pairs: Vec<String> =
        values.iter().enumerate().map(|(index, minor)| format!("{},{}", frame.x(index), frame.y(*minor))).collect();
    pairs.join(" ")
}

/// The chart of `points` (oldest first) at `scale`; a sentence instead when there is none.
pub fn balance_chart(points: &[Point], scale: Scale) -> String {
    if points.is_empty() {
        return "<p class=\"muted\">No flows to chart.</p>\n".to_owned();
    }
    let max = points.iter().map(|point| value(&point.after, Property::Total)).max().unwrap_or(0);
    // Balances are never negative (spec §1); a low below zero only keeps a damaged one on the page.
    let low = points
        .iter()
        .flat_map(|point| LINES.map(|(property, _, _)| value(&point.after, property)))
        .min()
        .unwrap_or(0)
        .min(0);
    let (step, high) = amount_axis(max);
    let frame = Frame { count: points.len(), low, high };
    let mut svg = format!(
        "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-label=\"Balance per bucket after each of {} flows\">\n",
        points.len()
    );
    svg.push_str(&amount_grid(&frame, step, scale));
    svg.push_str(&flow_axis(&frame, points));
    for (property, colour, dashed) in LINES {
        let values: Vec<i128> = points.iter().map(|point| value(&point.after, property)).collect();
        let dash = if dashed { " stroke-dasharray=\"6 4\"" } else { "" };
        svg.push_str(&format!(
            "<polyline data-bucket=\"{name}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash} points=\"{}\">\
             <title>{name}</title></polyline>\n",
            polyline_points(&frame, &values),
            name = property.as_str(),
        ));
        if points.len() <= DOTS_FLOWS_MAX {
            for (index, minor) in values.iter().enumerate() {
                svg.push_str(&format!(
                    "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{colour}\"><title>{} after flow {}: {}</title></circle>\n",
                    frame.x(index),
                    frame.y(*minor),
                    property.as_str(),
                    points[index].flow_id,
                    Amount::format_wide(*minor, scale),
                ));
            }
        }
    }
    svg.push_str(&legend());
    svg.push_str("</svg>\n");
    svg
}

/// The amount axis: a grid line and a label per step, the zero line darker.
fn amount_grid(frame: &Frame, step: i128, scale: Scale) -> String {
    let mut out = String::new();
    let mut tick = frame.low.div_euclid(step) * step;
    while tick <= frame.high {
        if tick >= frame.low {
            let y = frame.y(tick);
            let stroke = if tick == 0 { "#8895a3" } else { "#e3e8ee" };
            out.push_str(&format!(
                "<line x1=\"{MARGIN_LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{stroke}\"/>\
                 <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
                MARGIN_LEFT + PLOT_WIDTH,
                MARGIN_LEFT - 8,
                y + 4,
                Amount::format_wide(tick, scale),
            ));
        }
        tick += step;
    }
    out.push_str(&format!(
        "<line x1=\"{MARGIN_LEFT}\" y1=\"{MARGIN_TOP}\" x2=\"{MARGIN_LEFT}\" y2=\"{}\" stroke=\"#8895a3\"/>\n",
        MARGIN_TOP + PLOT_HEIGHT
    ));
    out
}

/// The flow axis: up to [`FLOW_TICKS`] flow ids, and the first and last flow's time.
fn flow_axis(frame: &Frame, points: &[Point]) -> String {
    let bottom = MARGIN_TOP + PLOT_HEIGHT;
    let last = points.len() - 1;
    let mut indexes: Vec<usize> = (0..FLOW_TICKS).map(|tick| tick * last / (FLOW_TICKS - 1)).collect();
    indexes.dedup();
    let mut out = String::new();
    for index in indexes {
        let x = frame.x(index);
        out.push_str(&format!(
            "<line x1=\"{x}\" y1=\"{bottom}\" x2=\"{x}\" y2=\"{}\" stroke=\"#8895a3\"/>\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">#{}</text>\n",
            bottom + 5,
            bottom + 18,
            points[index].flow_id,
        ));
    }
    let times_y = bottom + 38;
    out.push_str(&format!(
        "<text x=\"{MARGIN_LEFT}\" y=\"{times_y}\" text-anchor=\"start\">{}</text>\n",
        escape(&points[0].time)
    ));
    if last > 0 {
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{times_y}\" text-anchor=\"end\">{}</text>\n",
            MARGIN_LEFT + PLOT_WIDTH,
            escape(&points[last].time)
        ));
    }
    out.push_str(&format!(
        "<text x=\"{}\" y=\"{times_y}\" text-anchor=\"middle\">flow id (log order)</text>\n",
        MARGIN_LEFT + PLOT_WIDTH / 2
    ));
    out
}

/// The legend, in one row above the plot.
fn legend() -> String {
    let mut out = String::from("<g class=\"legend\">");
    for (slot, (property, colour, dashed)) in (0i64..).zip(LINES) {
        let x = MARGIN_LEFT + slot * 90;
        let dash = if dashed { " stroke-dasharray=\"6 4\"" } else { "" };
        out.push_str(&format!(
            "<line x1=\"{x}\" y1=\"14\" x2=\"{}\" y2=\"14\" stroke=\"{colour}\" stroke-width=\"3\"{dash}/>\
             <text x=\"{}\" y=\"18\">{}</text>",
            x + 24,
            x + 30,
            property.as_str()
        ));
    }
    out.push_str("</g>\n");
    out
}

/// `numerator / denominator` rounded half up, for a non-negative numerator and a positive
/// denominator (every use here: distances along an axis).
fn divide_half_up(numerator: i128, denominator: i128) -> i128 {
    debug_assert!(numerator >= 0 && denominator > 0, "{numerator} / {denominator}");
    (2 * numerator + denominator) / (2 * denominator)
}

/// A distance within the plot as a pixel count; it is at most the plot's size by construction.
fn to_pixels(distance: i128) -> i64 {
    i64::try_from(distance).unwrap_or(i64::MAX)
}

fn to_i128(count: usize) -> i128 {
    i128::try_from(count).unwrap_or(i128::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws `series` (minor units) as one line: the axis top it chooses and the points.
    fn check(series: &[i64], expect_top: i128, expect_points: &str) {
        let values: Vec<i128> = series.iter().copied().map(i128::from).collect();
        let max = values.iter().copied().max().unwrap_or(0);
        let (_, top) = amount_axis(max);
        assert_eq!(top, expect_top, "axis top for {series:?}");
        let frame = Frame { count: series.len(), low: 0, high: top };
        assert_eq!(polyline_points(&frame, &values), expect_points, "points of {series:?}");
    }

    #[test]
    fn coordinates_are_whole_pixels_from_minor_units() {
        // The plot spans x 88..=980 and y 36..=284 (284 is zero).
        check(&[0, 7_500, 15_000], 15_000, "88,284 534,160 980,36");
        // One point sits in the middle; 5 on an axis of 6: 5 × 248 / 6 = 206.67, rounded to 207.
        check(&[5], 6, "534,77");
        // All zero still has an axis of one step.
        check(&[0, 0], 1, "88,284 980,284");
        // Four points: x at 0, 297.33, 594.67, 892 → 88, 385, 683, 980; 120.01 of 150.00 is 198.4 up.
        check(&[12_001, 0, 3_000, 15_000], 15_000, "88,86 385,284 683,234 980,36");
        // Amounts near the top of i64 neither overflow nor leave the plot.
        check(&[i64::MAX, 0], 10_000_000_000_000_000_000, "88,55 980,284");
    }

    #[test]
    fn the_chart_has_one_line_per_bucket_axes_and_a_legend() {
        let scale = Scale::CNY;
        let points = [
            Point { flow_id: 1, time: "2025-01-01 10:00:00".into(), after: Buckets::from_minor(10_000, 2_000, 0) },
            Point { flow_id: 3, time: "2025-01-02 <b>".into(), after: Buckets::from_minor(13_235, 1_765, 0) },
        ];
        let svg = balance_chart(&points, scale);
        for bucket in ["REAL", "GIFT", "PRE", "TOTAL"] {
            assert_eq!(svg.matches(&format!("<polyline data-bucket=\"{bucket}\"")).count(), 1, "{bucket}: {svg}");
        }
        // The axis: 0.00 to 150.00 in steps of 50.00; TOTAL 150.00 is at the top after flow 3.
        for label in [">0.00<", ">50.00<", ">100.00<", ">150.00<", ">#1<", ">#3<"] {
            assert!(svg.contains(label), "{label} in {svg}");
        }
        assert!(svg.contains("TOTAL after flow 3: 150.00"), "{svg}");
        assert!(svg.contains("2025-01-02 &lt;b&gt;") && !svg.contains("<b>"), "times are escaped: {svg}");
        assert_eq!(balance_chart(&[], scale), "<p class=\"muted\">No flows to chart.</p>\n");
    }
}
