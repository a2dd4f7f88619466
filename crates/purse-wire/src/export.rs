//! `purse export`: every flow the filter keeps, in log order, streamed to stdout one page at a
//! time (spec §12). Memory holds one page of the ledger's export and the output buffer, never
//! the log.
//!
//! JSON lines: each line is the flow detail `purse flow` prints, compact. CSV (RFC 4180): a
//! header row, then one row per flow, every line ended by CRLF as the RFC has it; a field that
//! holds a comma, a quote, CR or LF is quoted with its quotes doubled; `null` is an empty field
//! and an empty text a quoted empty field (`""`), so the two stay apart.
//!
//! A failure part way (the disk, a closed pipe) leaves the lines already written on stdout and
//! reports the error as every command does: on stderr with a non-zero exit. Only the exit
//! status says an export is complete.

use std::io::{self, BufWriter, Write};

use purse_core::FlowDetail;
use purse_ledger::{ExportFilter, Ledger};

use crate::args::ExportFormat;
use crate::error::WireError;
use crate::render::FlowJson;

/// Bytes written to stdout at once.
const OUTPUT_BUFFER_BYTES: usize = 256 * 1024;

/// The CSV columns: the flow detail's scalar fields in spec §5 order, then the affected and
/// after amounts of each property.
pub const CSV_HEADER: [&str; 23] = [
    "flow_id",
    "flow_type",
    "account_id",
    "card_id",
    "brand_id",
    "shop_id",
    "operator",
    "request_id",
    "outer_order_id",
    "order_time",
    "order_value",
    "current_value",
    "remark",
    "ext_info",
    "src_outer_order_id",
    "real_affected",
    "gift_affected",
    "pre_affected",
    "total_affected",
    "real_after",
    "gift_after",
    "pre_after",
    "total_after",
];

/// Writes the export to `out`, flushing each page before the next is asked for.
pub async fn run(
    ledger: &Ledger,
    filter: ExportFilter,
    format: ExportFormat,
    out: impl Write,
) -> Result<(), WireError> {
    let failed = |io: io::Error| WireError::System(format!("writing the export to stdout: {io}"));
    let mut out = BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, out);
    if format == ExportFormat::Csv {
        csv_row(&mut out, CSV_HEADER.iter().map(|name| Some(*name))).map_err(failed)?;
    }
    let mut stream = ledger.export(filter).await?;
    while let Some(flows) = stream.next_page().await? {
        for flow in &flows {
            let detail = ledger.detail(flow)?;
            match format {
                ExportFormat::Jsonl => json_line(&mut out, &detail),
                ExportFormat::Csv => csv_row(&mut out, csv_fields(&detail)),
            }
            .map_err(failed)?;
        }
        out.flush().map_err(failed)?;
    }
    out.flush().map_err(failed)
}

pub fn json_line(out: &mut impl Write, detail: &FlowDetail) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &FlowJson::new(detail))?;
    out.write_all(b"\n")
}

/// The row of one flow, in [`CSV_HEADER`] order.
pub fn csv_fields(detail: &FlowDetail) -> impl Iterator<Item = Option<&str>> {
    let scalars = [
        Some(detail.flow_id.as_str()),
        Some(detail.flow_type),
        Some(&detail.account_id),
        detail.card_id.as_deref(),
        detail.brand_id.as_deref(),
        detail.shop_id.as_deref(),
        detail.operator.as_deref(),
        Some(&detail.request_id),
        Some(&detail.outer_order_id),
        Some(&detail.order_time),
        Some(&detail.order_value),
        Some(&detail.current_value),
        detail.remark.as_deref(),
        detail.ext_info.as_deref(),
        detail.src_outer_order_id.as_deref(),
    ];
    scalars.into_iter().chain(amounts(&detail.affected_property_list)).chain(amounts(&detail.after_property_list))
}

/// The amounts of a property list (REAL, GIFT, PRE, TOTAL), as CSV fields.
fn amounts<'a>(list: &'a [(&'static str, String)]) -> impl Iterator<Item = Option<&'a str>> {
    list.iter().map(|(_, value)| Some(value.as_str()))
}

/// One RFC 4180 record and its CRLF.
pub fn csv_row<'a>(out: &mut impl Write, fields: impl Iterator<Item = Option<&'a str>>) -> io::Result<()> {
    for (index, field) in fields.enumerate() {
        if index > 0 {
            out.write_all(b",")?;
        }
        match field {
            None => {}
            Some(text) if text.is_empty() || text.contains([',', '"', '\r', '\n']) => {
                out.write_all(b"\"")?;
                out.write_all(text.replace('"', "\"\"").as_bytes())?;
                out.write_all(b"\"")?;
            }
            Some(text) => out.write_all(text.as_bytes())?,
        }
    }
    out.write_all(b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(fields: &[Option<&str>], expect: &str) {
        let mut out = Vec::new();
        csv_row(&mut out, fields.iter().copied()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), expect, "{fields:?}");
    }

    #[test]
    fn csv_quoting() {
        check(&[Some("a"), Some("b")], "a,b\r\n");
        check(&[None, Some(""), None], ",\"\",\r\n");
        check(&[Some("a,b")], "\"a,b\"\r\n");
        check(&[Some("say \"hi\"")], "\"say \"\"hi\"\"\"\r\n");
        check(&[Some("two\nlines"), Some("cr\r")], "\"two\nlines\",\"cr\r\"\r\n");
        check(&[Some("{\"k\": [1, 2]}")], "\"{\"\"k\"\": [1, 2]}\"\r\n");
        check(&[Some("-12.50"), Some("中文")], "-12.50,中文\r\n");
    }
}
