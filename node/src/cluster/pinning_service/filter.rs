//! The filters of `GET /pins` (`cid`, `name` with `match`, `status`, `before`, `after`,
//! `limit`, `meta`), parsed and checked from the query into a [`Filter`]; a bad one is a
//! 400 answer saying what is accepted.

use std::collections::{BTreeMap, HashSet};

use super::timestamp::parse_rfc3339;
use super::wire::STATUSES;
use super::{
    DEFAULT_LIMIT, MAX_CID_FILTER, MAX_LIMIT, MAX_NAME, ServiceRequest, ServiceResponse,
    bad_request,
};
use crate::cluster::pinset::PinSpec;

pub(super) fn query<'a>(req: &'a ServiceRequest, key: &str) -> Option<&'a str> {
    req.query
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// How `name` is compared (`match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NameMatch {
    Exact,
    IExact,
    Partial,
    IPartial,
}

pub(super) fn name_matches(name: &str, wanted: &str, how: NameMatch) -> bool {
    match how {
        NameMatch::Exact => name == wanted,
        NameMatch::IExact => name.to_lowercase() == wanted.to_lowercase(),
        NameMatch::Partial => name.contains(wanted),
        NameMatch::IPartial => name.to_lowercase().contains(&wanted.to_lowercase()),
    }
}

/// The filters of `GET /pins`, checked.
#[derive(Debug)]
pub(super) struct Filter {
    pub(super) cids: Option<HashSet<String>>,
    pub(super) name: Option<(String, NameMatch)>,
    pub(super) statuses: Vec<&'static str>,
    pub(super) before: Option<u64>,
    pub(super) after: Option<u64>,
    pub(super) limit: usize,
    pub(super) meta: BTreeMap<String, String>,
}

impl Filter {
    pub(super) fn parse(req: &ServiceRequest) -> Result<Self, ServiceResponse> {
        let list = |key: &str| -> Vec<&str> {
            query(req, key)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let cids = match query(req, "cid") {
            None => None,
            Some(_) => {
                let given = list("cid");
                if given.is_empty() || given.len() > MAX_CID_FILTER {
                    return Err(bad_request(format!(
                        "cid takes 1 to {MAX_CID_FILTER} CIDs, comma-separated"
                    )));
                }
                let mut set = HashSet::new();
                for c in given {
                    let cid = crate::content::cid::parse_cid_arg(c)
                        .map_err(|e| bad_request(format!("cid filter {c:?}: {e}")))?;
                    set.insert(cid.to_string());
                }
                Some(set)
            }
        };
        let how = match query(req, "match").unwrap_or("exact") {
            "exact" => NameMatch::Exact,
            "iexact" => NameMatch::IExact,
            "partial" => NameMatch::Partial,
            "ipartial" => NameMatch::IPartial,
            other => {
                return Err(bad_request(format!(
                    "match {other:?}: use exact, iexact, partial or ipartial"
                )));
            }
        };
        let name = match query(req, "name") {
            Some(n) if n.chars().count() > MAX_NAME => {
                return Err(bad_request(format!("name is over {MAX_NAME} characters")));
            }
            Some(n) => Some((n.to_owned(), how)),
            None => None,
        };
        let statuses = match query(req, "status") {
            None => vec!["pinned"],
            Some(_) => {
                let mut out = Vec::new();
                for s in list("status") {
                    let known = STATUSES.iter().find(|k| **k == s).ok_or_else(|| {
                        bad_request(format!(
                            "status {s:?}: use queued, pinning, pinned or failed"
                        ))
                    })?;
                    out.push(*known);
                }
                if out.is_empty() {
                    return Err(bad_request("status is empty"));
                }
                out
            }
        };
        let time = |key: &str| -> Result<Option<u64>, ServiceResponse> {
            query(req, key)
                .map(|v| {
                    parse_rfc3339(v).ok_or_else(|| {
                        bad_request(format!(
                            "{key} {v:?} is not an RFC 3339 time like 2021-03-04T05:06:07Z"
                        ))
                    })
                })
                .transpose()
        };
        let limit = match query(req, "limit").map(str::parse::<usize>) {
            None => DEFAULT_LIMIT,
            Some(Ok(n)) if (1..=MAX_LIMIT).contains(&n) => n,
            Some(_) => {
                return Err(bad_request(format!(
                    "limit must be between 1 and {MAX_LIMIT}"
                )));
            }
        };
        let meta = match query(req, "meta") {
            None => BTreeMap::new(),
            Some(text) => serde_json::from_str(text).map_err(|e| {
                bad_request(format!(
                    "meta must be a JSON object of strings, like {{\"app\":\"x\"}}: {e}"
                ))
            })?,
        };
        Ok(Self {
            cids,
            name,
            statuses,
            before: time("before")?,
            after: time("after")?,
            limit,
            meta,
        })
    }

    /// Everything but the status, which costs an allocation to learn.
    pub(super) fn admits(&self, cid: &str, spec: &PinSpec, created: u64) -> bool {
        self.cids.as_ref().is_none_or(|c| c.contains(cid))
            && self
                .name
                .as_ref()
                .is_none_or(|(n, how)| name_matches(&spec.name, n, *how))
            && self.before.is_none_or(|t| created < t)
            && self.after.is_none_or(|t| created > t)
            && self
                .meta
                .iter()
                .all(|(k, v)| spec.metadata.get(k) == Some(v))
    }
}
