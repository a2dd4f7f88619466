//! Paging an account's history: filter its flow index, then read only the page's flows.

use crate::error::Error;
use crate::ledger::{FlowPage, FlowQuery};
use crate::projection::FlowRef;
use crate::writer::Writer;

pub(crate) fn page(writer: &Writer, query: &FlowQuery) -> Result<FlowPage, Error> {
    writer.check_not_poisoned()?;
    let flows = writer
        .projections
        .flow_refs(&query.account_id)?
        .ok_or_else(|| Error::AccountNotFound(query.account_id.clone()))?;
    let matches = |flow: &&FlowRef| {
        (query.flow_types.is_empty() || query.flow_types.contains(&flow.flow_type))
            && query.start_time.is_none_or(|start| flow.order_time >= start)
            && query.end_time.is_none_or(|end| flow.order_time < end)
    };
    let total_count = flows.iter().filter(matches).count() as u64;
    let skip = (u64::from(query.page_no) - 1).saturating_mul(u64::from(query.page_size));
    let skip = usize::try_from(skip).unwrap_or(usize::MAX);
    let page = flows
        .iter()
        .filter(matches)
        .skip(skip)
        .take(query.page_size as usize)
        .map(|flow| writer.read_flow(flow.sequence))
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(FlowPage { total_count, page_no: query.page_no, page_size: query.page_size, flows: page })
}
