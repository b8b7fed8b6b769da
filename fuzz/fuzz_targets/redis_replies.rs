//! Fuzz target: the Redis reply shapes swss decodes itself, fed arbitrary
//! `redis::Value` trees (built from the input bytes by a small recursive
//! builder bounded in depth and size, since `redis::Value` has no
//! `Arbitrary`):
//!
//! * `consumer_state::parse_pops` (the pops script reply),
//! * `table::value_to_string`, `table::value_to_pairs` (HGETALL shapes),
//! * `table::parse_scan_reply` (one SCAN reply),
//! * `consumer_view::parse_view_reply` (4 items per key, `view_hash`),
//! * `subscriber_state::parse_keyspace_event`, reached as the subscriber
//!   reaches it: `redis::Msg::from_value` of a RESP2 `pmessage` array or a
//!   RESP3 push, then the channel bytes and payload bytes.
//!
//! Must hold: no panic; every result equals an independent reference
//! decoder written from the functions' doc comments (the accepted shapes
//! and what they mean); every rejected shape is
//! `Err(SwssError::UnexpectedReply)`, never another error.
#![no_main]

use arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use redis::{PushKind, Value, VerbatimFormat};
use swss::consumer_state::{parse_pops, KeyOpFieldValues, Op};
use swss::consumer_view::parse_view_reply;
use swss::subscriber_state::parse_keyspace_event;
use swss::table::{parse_scan_reply, value_to_pairs, value_to_string};
use swss::{FieldValues, SwssError};

/// Deepest nesting of arrays/maps built.
const MAX_DEPTH: u32 = 4;
/// Most nodes in one tree (keeps every run fast).
const MAX_NODES: u32 = 96;

/// Text the decoders look at, so short inputs reach the interesting paths.
const WORDS: &[&str] = &[
    "",
    "0",
    "1",
    "17",
    "-1",
    "18446744073709551615",
    "18446744073709551616",
    " 1",
    "+1",
    "neigh",
    "family",
    "IPv4",
    "00:11:22:33:44:55",
    "Ethernet0:10.0.0.2",
    "alias@x",
    "del",
    "hset",
    "expired",
    "G",
    "message",
    "pmessage",
    "__keyspace@4__:PORT|Ethernet0",
    "__keyspace@0__:NEIGH_TABLE:Vlan1000:fc02:1000::2",
];

struct Builder<'a, 'b> {
    u: &'a mut Unstructured<'b>,
    nodes: u32,
}

impl Builder<'_, '_> {
    fn bytes(&mut self) -> Result<Vec<u8>> {
        Ok(match self.u.int_in_range(0..=3u8)? {
            0 | 1 => WORDS[self.u.choose_index(WORDS.len())?].as_bytes().to_vec(),
            2 => {
                // A word with arbitrary bytes (often invalid UTF-8) around it.
                let mut b = WORDS[self.u.choose_index(WORDS.len())?].as_bytes().to_vec();
                let extra: &[u8] = self.u.arbitrary()?;
                b.extend_from_slice(&extra[..extra.len().min(8)]);
                b
            }
            _ => {
                let raw: &[u8] = self.u.arbitrary()?;
                raw[..raw.len().min(40)].to_vec()
            }
        })
    }

    fn text(&mut self) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.bytes()?).into_owned())
    }

    fn int(&mut self) -> Result<i64> {
        Ok(match self.u.int_in_range(0..=3u8)? {
            0 => 0,
            1 => 1,
            2 => self.u.int_in_range(-2..=20)?,
            _ => self.u.arbitrary()?,
        })
    }

    /// A string-like reply (what `value_to_string` accepts), usually.
    fn stringish(&mut self) -> Result<Value> {
        Ok(match self.u.int_in_range(0..=9u8)? {
            0..=4 => Value::BulkString(self.bytes()?),
            5 => Value::SimpleString(self.text()?),
            6 => Value::Int(self.int()?),
            7 => Value::Okay,
            8 => Value::VerbatimString {
                format: VerbatimFormat::Text,
                text: self.text()?,
            },
            _ => self.value(1)?,
        })
    }

    /// An HGETALL-like reply (what `value_to_pairs` accepts), usually.
    fn pairs(&mut self, depth: u32) -> Result<Value> {
        Ok(match self.u.int_in_range(0..=7u8)? {
            0..=3 => {
                let n = self.u.int_in_range(0..=3u8)? * 2 + u8::from(self.u.ratio(1, 16)?);
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(self.stringish()?);
                }
                Value::Array(items)
            }
            4 => {
                let n = self.u.int_in_range(0..=3u8)?;
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push((self.stringish()?, self.stringish()?));
                }
                Value::Map(items)
            }
            5 => Value::Nil,
            6 => Value::Int(self.u.int_in_range(0..=1)?),
            _ => self.value(depth)?,
        })
    }

    fn list(&mut self, depth: u32) -> Result<Vec<Value>> {
        let n = self.u.int_in_range(0..=5u8)?;
        let mut items = Vec::new();
        for _ in 0..n {
            if self.nodes >= MAX_NODES {
                break;
            }
            items.push(self.value(depth - 1)?);
        }
        Ok(items)
    }

    fn map(&mut self, depth: u32) -> Result<Vec<(Value, Value)>> {
        let n = self.u.int_in_range(0..=3u8)?;
        let mut items = Vec::new();
        for _ in 0..n {
            if self.nodes >= MAX_NODES {
                break;
            }
            items.push((self.value(depth - 1)?, self.value(depth - 1)?));
        }
        Ok(items)
    }

    /// Any reply at all: every `redis::Value` variant can come out.
    fn value(&mut self, depth: u32) -> Result<Value> {
        self.nodes += 1;
        let leaves_only = depth == 0 || self.nodes >= MAX_NODES;
        let last = if leaves_only { 10u8 } else { 15 };
        Ok(match self.u.int_in_range(0..=last)? {
            0 => Value::Nil,
            1 => Value::Int(self.int()?),
            2 | 3 => Value::BulkString(self.bytes()?),
            4 => Value::SimpleString(self.text()?),
            5 => Value::Okay,
            6 => Value::Double(self.u.arbitrary()?),
            7 => Value::Boolean(self.u.arbitrary()?),
            8 => Value::VerbatimString {
                format: match self.u.int_in_range(0..=2u8)? {
                    0 => VerbatimFormat::Text,
                    1 => VerbatimFormat::Markdown,
                    _ => VerbatimFormat::Unknown(self.text()?),
                },
                text: self.text()?,
            },
            9 => {
                // Server errors and big numbers have no public constructor:
                // let the client's own RESP parser build them.
                let word = self.text()?.replace(['\r', '\n'], "");
                let resp = if self.u.arbitrary()? {
                    format!("-ERR {word}\r\n")
                } else {
                    format!("({}\r\n", self.u.arbitrary::<u128>()?)
                };
                redis::parse_redis_value(resp.as_bytes()).unwrap_or(Value::Nil)
            }
            10 => Value::BulkString(Vec::new()),
            11 | 12 => Value::Array(self.list(depth)?),
            13 => Value::Map(self.map(depth)?),
            14 => Value::Set(self.list(depth)?),
            _ => {
                if self.u.arbitrary()? {
                    Value::Attribute {
                        data: Box::new(self.value(depth - 1)?),
                        attributes: self.map(depth)?,
                    }
                } else {
                    Value::Push {
                        kind: PushKind::Other(self.text()?),
                        data: self.list(depth)?,
                    }
                }
            }
        })
    }
}

// ===== reference decoders, from the doc comments =====

fn ref_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        Value::Okay => Some("OK".into()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn ref_pairs(v: &Value) -> Option<FieldValues> {
    match v {
        Value::Nil => Some(Vec::new()),
        Value::Array(items) if items.len() % 2 == 0 => items
            .chunks(2)
            .map(|p| Some((ref_string(&p[0])?, ref_string(&p[1])?)))
            .collect(),
        Value::Map(pairs) => pairs
            .iter()
            .map(|(f, v)| Some((ref_string(f)?, ref_string(v)?)))
            .collect(),
        _ => None,
    }
}

fn ref_pops(v: &Value) -> Option<Vec<KeyOpFieldValues>> {
    match v {
        Value::Nil => Some(Vec::new()),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Array(p) if p.len() == 2 => {
                    let key = ref_string(&p[0])?;
                    let fvs = ref_pairs(&p[1])?;
                    let op = if fvs.is_empty() { Op::Del } else { Op::Set };
                    Some(KeyOpFieldValues { key, op, fvs })
                }
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn ref_scan(v: &Value) -> Option<(u64, Vec<String>)> {
    match v {
        Value::Array(p) if p.len() == 2 => {
            let cursor = ref_string(&p[0])?.parse::<u64>().ok()?;
            let Value::Array(keys) = &p[1] else {
                return None;
            };
            Some((cursor, keys.iter().map(ref_string).collect::<Option<_>>()?))
        }
        _ => None,
    }
}

/// A view hash: integer 0 (not a hash) reads as empty.
fn ref_view_hash(v: &Value) -> Option<FieldValues> {
    match v {
        Value::Int(0) => Some(Vec::new()),
        v => ref_pairs(v),
    }
}

/// HSET of `state` into `base` (a field already there takes the new value
/// in place, new fields are appended).
fn hset(mut base: FieldValues, state: FieldValues) -> FieldValues {
    for (f, v) in state {
        match base.iter_mut().find(|(have, _)| *have == f) {
            Some(slot) => slot.1 = v,
            None => base.push((f, v)),
        }
    }
    base
}

fn ref_view(v: &Value, chunk: &[String]) -> Option<Vec<(String, FieldValues)>> {
    let Value::Array(items) = v else { return None };
    if items.len() != chunk.len() * 4 {
        return None;
    }
    let mut out = Vec::new();
    for (key, p) in chunk.iter().zip(items.chunks(4)) {
        let consumed = ref_view_hash(&p[0])?;
        let fvs = if p[1] == Value::Int(1) {
            let state = ref_view_hash(&p[3])?;
            let base = if p[2] == Value::Int(1) {
                Vec::new()
            } else {
                consumed
            };
            hset(base, state)
        } else {
            consumed
        };
        if !fvs.is_empty() {
            out.push((key.clone(), fvs));
        }
    }
    Some(out)
}

/// `got` must equal `want`; a rejection must be `UnexpectedReply`.
fn check<T: PartialEq + std::fmt::Debug>(
    what: &str,
    input: &Value,
    got: std::result::Result<T, SwssError>,
    want: Option<T>,
) {
    match (got, want) {
        (Ok(g), Some(w)) => assert_eq!(g, w, "{what} of {input:?}"),
        (Err(e @ SwssError::UnexpectedReply { .. }), None) => {
            let _ = e.to_string();
        }
        (Err(e), None) => panic!("{what}: {e:?} is not UnexpectedReply for {input:?}"),
        (Ok(g), None) => panic!("{what} accepted {input:?} as {g:?}"),
        (Err(e), Some(w)) => panic!("{what} rejected {input:?} ({e}), expected {w:?}"),
    }
}

fn run(u: &mut Unstructured) -> Result<()> {
    let which = u.int_in_range(0..=5u8)?;
    let mut b = Builder { u, nodes: 0 };
    match which {
        0 => {
            // Pops: usually an array of [key, pairs] entries.
            let v = if b.u.ratio(3, 4)? {
                let n = b.u.int_in_range(0..=4u8)?;
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(if b.u.ratio(7, 8)? {
                        Value::Array(vec![b.stringish()?, b.pairs(2)?])
                    } else {
                        b.value(2)?
                    });
                }
                Value::Array(items)
            } else {
                b.value(MAX_DEPTH)?
            };
            check("parse_pops", &v, parse_pops(&v), ref_pops(&v));
        }
        1 => {
            let v = b.pairs(MAX_DEPTH)?;
            check(
                "value_to_pairs",
                &v,
                value_to_pairs(&v, "HGETALL T|k"),
                ref_pairs(&v),
            );
        }
        2 => {
            let v = b.value(MAX_DEPTH)?;
            assert_eq!(
                value_to_string(&v),
                ref_string(&v),
                "value_to_string of {v:?}"
            );
        }
        3 => {
            // SCAN: usually [cursor, [keys...]].
            let v = if b.u.ratio(3, 4)? {
                let n = b.u.int_in_range(0..=4u8)?;
                let mut keys = Vec::new();
                for _ in 0..n {
                    keys.push(b.stringish()?);
                }
                Value::Array(vec![b.stringish()?, Value::Array(keys)])
            } else {
                b.value(MAX_DEPTH)?
            };
            check(
                "parse_scan_reply",
                &v,
                parse_scan_reply(&v, "SCAN MATCH T|*"),
                ref_scan(&v),
            );
        }
        4 => {
            // View script: usually 4 items per key, sometimes one too few/many.
            let n = b.u.int_in_range(0..=3u8)?;
            let chunk: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            let v = if b.u.ratio(3, 4)? {
                let mut items = Vec::new();
                for _ in 0..n {
                    items.push(b.pairs(2)?);
                    for _ in 0..2 {
                        items.push(match b.u.int_in_range(0..=3u8)? {
                            0 | 1 => Value::Int(1),
                            2 => Value::Int(0),
                            _ => b.value(1)?,
                        });
                    }
                    items.push(b.pairs(2)?);
                }
                if b.u.ratio(1, 16)? {
                    if b.u.arbitrary()? {
                        items.pop();
                    } else {
                        items.push(Value::Nil);
                    }
                }
                Value::Array(items)
            } else {
                b.value(MAX_DEPTH)?
            };
            let got = parse_view_reply(&v, &chunk, "T:", "_T:", "APPL_DB");
            check("parse_view_reply", &v, got, ref_view(&v, &chunk));
        }
        _ => {
            // A keyspace notification as the subscriber receives it.
            let prefix = if b.u.arbitrary()? {
                "__keyspace@4__:PORT|".to_string()
            } else {
                b.text()?
            };
            let channel = if b.u.ratio(3, 4)? {
                let mut c = prefix.as_bytes().to_vec();
                c.extend(b.bytes()?);
                Value::BulkString(c)
            } else {
                b.stringish()?
            };
            let payload = b.stringish()?;
            let pattern = Value::BulkString(format!("{prefix}*").into_bytes());
            let v = match b.u.int_in_range(0..=2u8)? {
                0 => Value::Array(vec![
                    Value::BulkString(b"pmessage".to_vec()),
                    pattern,
                    channel,
                    payload,
                ]),
                1 => Value::Push {
                    kind: PushKind::PMessage,
                    data: vec![pattern, channel, payload],
                },
                _ => b.value(MAX_DEPTH)?,
            };
            let Some(msg) = redis::Msg::from_value(&v) else {
                return Ok(());
            };
            let Ok(channel) = msg.get_channel::<Vec<u8>>() else {
                return Ok(());
            };
            let payload = msg.get_payload_bytes();
            let got = parse_keyspace_event(&channel, payload, &prefix);
            let text = String::from_utf8_lossy(&channel);
            let want = text
                .strip_prefix(prefix.as_str())
                .map(|k| (k.to_string(), String::from_utf8_lossy(payload).into_owned()));
            assert_eq!(got, want, "parse_keyspace_event of {v:?}");
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
});
