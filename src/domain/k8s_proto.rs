//! Kubernetes' own objects as kube-apiserver stores them in etcd, decoded for reading.
//!
//! Built-in types are stored under `/registry/…` as protobuf: the 4-byte magic `k8s\0`, then a
//! `runtime.Unknown` envelope whose `typeMeta` names the type and whose `raw` is the object's own
//! protobuf message. [`decode`] unwraps the envelope, decodes `raw` with the k8s-pb type for
//! `(apiVersion, kind)` and renders it as YAML close to what `kubectl get -o yaml` prints.
//!
//! k8s-pb's types have no serde, so the YAML comes from their `Debug` output, which prost
//! generates with a small regular grammar (`Name { field: value, … }`, `Some(x)`, `None`, `[…]`,
//! `{"k": v}`, Rust-escaped strings, numbers, bools). [`debug_to_yaml`] parses that into a tree
//! and converts it: `None` and empty or zero scalars are dropped (proto2 cannot tell an unset Go
//! value from a zero one; a short list of fields where zero means something keeps theirs), field
//! names become Kubernetes' lowerCamelCase JSON names, `Time` becomes RFC 3339 text, `Quantity`
//! and `IntOrString` become their scalar, embedded JSON (`FieldsV1`, `RawExtension`, CRD schema
//! `JSON`) becomes YAML, and bytes (`Secret.data`, `ConfigMap.binaryData`, `caBundle`, …) become
//! `!text` when they are printable UTF-8, else `!binary` base64.
//!
//! Everything here is pure and read-only: nothing in this module produces bytes to write back.

use base64::Engine as _;
use prost::Message;
use serde_yaml::value::{Tag, TaggedValue};
use serde_yaml::{Mapping, Number, Value};

/// The prefix kube-apiserver puts before its protobuf envelope.
pub const MAGIC: &[u8] = b"k8s\0";

/// Label of a decoded value in the key view.
pub const READ_ONLY_LABEL: &str = "Kubernetes object (protobuf, read-only)";

/// Why such values are not edited through etcdboard.
pub const EDIT_REFUSED: &str = "This value is a Kubernetes object stored by kube-apiserver \
     (protobuf, `k8s\\0` prefix). etcdboard does not edit it: writing Kubernetes' storage \
     through etcd bypasses the API server (validation, admission, defaulting, its watch cache). \
     Change the object with kubectl or the Kubernetes API instead.";

/// Whether `value` is a kube-apiserver protobuf value (starts with `k8s\0`).
pub fn is_kube_proto(value: &[u8]) -> bool {
    value.starts_with(MAGIC)
}

/// The `runtime.Unknown` envelope after the magic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `typeMeta.apiVersion` (e.g. `v1`, `apps/v1`).
    pub api_version: String,
    /// `typeMeta.kind` (e.g. `Pod`).
    pub kind: String,
    /// The object's own protobuf message.
    pub raw: Vec<u8>,
    /// `contentEncoding` (empty in storage).
    pub content_encoding: String,
    /// `contentType` (empty in storage, meaning protobuf here).
    pub content_type: String,
}

/// Parses the envelope of a `k8s\0…` value.
pub fn envelope(value: &[u8]) -> Result<Envelope, String> {
    let body = value
        .strip_prefix(MAGIC)
        .ok_or_else(|| "no `k8s\\0` prefix".to_string())?;
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(body)
        .map_err(|e| format!("not a runtime.Unknown envelope: {e}"))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    Ok(Envelope {
        api_version: type_meta.api_version.unwrap_or_default(),
        kind: type_meta.kind.unwrap_or_default(),
        raw: unknown.raw.unwrap_or_default(),
        content_encoding: unknown.content_encoding.unwrap_or_default(),
        content_type: unknown.content_type.unwrap_or_default(),
    })
}

/// What a `k8s\0…` value decodes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// Decoded: the object as YAML (`apiVersion` and `kind` first).
    Yaml {
        /// `apiVersion` of the envelope.
        api_version: String,
        /// `kind` of the envelope.
        kind: String,
        /// The YAML text.
        text: String,
    },
    /// A valid envelope, but no decoder for this type (or its payload does not decode).
    NoDecoder {
        /// `apiVersion` of the envelope.
        api_version: String,
        /// `kind` of the envelope.
        kind: String,
        /// Why: "no decoder", or the decode error.
        reason: String,
    },
    /// The magic is there but the envelope is not a `runtime.Unknown`.
    Invalid(String),
}

impl Decoded {
    /// One line for the key view: what this is and why the raw bytes are shown when they are.
    pub fn note(&self) -> String {
        match self {
            Decoded::Yaml {
                api_version, kind, ..
            } => format!("{READ_ONLY_LABEL}: {kind} ({api_version})"),
            Decoded::NoDecoder {
                api_version,
                kind,
                reason,
            } => format!(
                "Kubernetes protobuf object of kind {kind} (apiVersion {api_version}) — \
                 {reason}; raw bytes below"
            ),
            Decoded::Invalid(reason) => format!(
                "Starts with the Kubernetes protobuf prefix `k8s\\0` but {reason}; raw bytes below"
            ),
        }
    }
}

/// Decodes a kube-apiserver protobuf value; `None` when `value` does not start with `k8s\0`.
pub fn decode(value: &[u8]) -> Option<Decoded> {
    if !is_kube_proto(value) {
        return None;
    }
    let env = match envelope(value) {
        Ok(env) => env,
        Err(e) => return Some(Decoded::Invalid(e)),
    };
    let no_decoder = |reason: String| Decoded::NoDecoder {
        api_version: env.api_version.clone(),
        kind: env.kind.clone(),
        reason,
    };
    if !env.content_encoding.is_empty() {
        return Some(no_decoder(format!(
            "content encoding `{}` not supported",
            env.content_encoding
        )));
    }
    let debug = match debug_text(&env.api_version, &env.kind, &env.raw) {
        None => return Some(no_decoder("no decoder".into())),
        Some(Err(e)) => return Some(no_decoder(e)),
        Some(Ok(text)) => text,
    };
    let text = debug_to_yaml(&debug)
        .and_then(|body| object_yaml(&env.api_version, &env.kind, body))
        .map_err(|e| no_decoder(format!("cannot render it ({e})")));
    Some(match text {
        Ok(text) => Decoded::Yaml {
            api_version: env.api_version,
            kind: env.kind,
            text,
        },
        Err(d) => d,
    })
}

/// `apiVersion`, `kind`, then the fields of `body` (a mapping), as YAML text; a comment line
/// first when the object holds bytes fields, saying how they are shown.
fn object_yaml(api_version: &str, kind: &str, body: Value) -> Result<String, String> {
    let mut out = Mapping::new();
    out.insert("apiVersion".into(), api_version.into());
    out.insert("kind".into(), kind.into());
    match body {
        Value::Mapping(fields) => {
            for (k, v) in fields {
                out.insert(k, v);
            }
        }
        other => return Err(format!("the object is not a message: {other:?}")),
    }
    let value = Value::Mapping(out);
    let text = serde_yaml::to_string(&value).map_err(|e| e.to_string())?;
    if has_bytes(&value) {
        Ok(format!("{BYTES_COMMENT}\n{text}"))
    } else {
        Ok(text)
    }
}

/// Prepended to the YAML of objects with bytes fields.
const BYTES_COMMENT: &str =
    "# bytes fields: `!text` = the bytes are printable UTF-8, shown as text; \
     `!binary` = base64 (the API shows both as base64)";

fn has_bytes(v: &Value) -> bool {
    match v {
        Value::Tagged(t) => t.tag == BYTES_TAG || t.tag == TEXT_TAG || has_bytes(&t.value),
        Value::Mapping(m) => m.values().any(has_bytes),
        Value::Sequence(s) => s.iter().any(has_bytes),
        _ => false,
    }
}

/// Most `{:?}` text one object may turn into before it is rendered. Protobuf can be far smaller
/// than its text (an empty sub-message is 2 bytes, its `Debug` hundreds), so the bound is on the
/// text: past it the value is shown raw instead of decoded. Bytes fields print up to 5 characters
/// a byte, so this still renders the largest object etcd stores by default (1.5 MiB).
const MAX_DEBUG_BYTES: usize = 8 * 1024 * 1024;

/// `{:?}` of a decoded message, or why it was not rendered: formatting stops at
/// [`MAX_DEBUG_BYTES`] instead of building the whole text.
fn bounded_debug(m: &impl std::fmt::Debug) -> Result<String, String> {
    struct Bounded(String);
    impl std::fmt::Write for Bounded {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            if self.0.len() + s.len() > MAX_DEBUG_BYTES {
                return Err(std::fmt::Error);
            }
            self.0.push_str(s);
            Ok(())
        }
    }
    let mut out = Bounded(String::new());
    match std::fmt::write(&mut out, format_args!("{m:?}")) {
        Ok(()) => Ok(out.0),
        Err(_) => Err(format!(
            "it is too large to render (over {} MiB as text)",
            MAX_DEBUG_BYTES / (1024 * 1024)
        )),
    }
}

macro_rules! decoders {
    (
        resources: [$($ty:path),* $(,)?],
        named: [$(($api:literal, $kind:literal) => $named:path),* $(,)?] $(,)?
    ) => {
        /// `(apiVersion, kind)` of every type [`decode`] decodes.
        pub const KINDS: &[(&str, &str)] = &[
            $((<$ty as k8s_pb::Resource>::API_VERSION, <$ty as k8s_pb::Resource>::KIND),)*
            $(($api, $kind),)*
        ];

        /// Decodes `raw` as the type named `(api_version, kind)`, as `{:?}` text.
        fn debug_text(
            api_version: &str,
            kind: &str,
            raw: &[u8],
        ) -> Option<Result<String, String>> {
            $(
                if api_version == <$ty as k8s_pb::Resource>::API_VERSION
                    && kind == <$ty as k8s_pb::Resource>::KIND
                {
                    return Some(<$ty as Message>::decode(raw).map_err(|e| format!("its payload does not decode ({e})")).and_then(|m| bounded_debug(&m)));
                }
            )*
            $(
                if api_version == $api && kind == $kind {
                    return Some(<$named as Message>::decode(raw).map_err(|e| format!("its payload does not decode ({e})")).and_then(|m| bounded_debug(&m)));
                }
            )*
            None
        }
    };
}

decoders!(
    // Types k8s-pb describes as resources (their apiVersion and kind come from it).
    resources: [
        k8s_pb::api::core::v1::Pod,
        k8s_pb::api::core::v1::ConfigMap,
        k8s_pb::api::core::v1::Secret,
        k8s_pb::api::core::v1::Service,
        k8s_pb::api::core::v1::Endpoints,
        k8s_pb::api::core::v1::Node,
        k8s_pb::api::core::v1::Namespace,
        k8s_pb::api::core::v1::ServiceAccount,
        k8s_pb::api::core::v1::Event,
        k8s_pb::api::core::v1::PersistentVolume,
        k8s_pb::api::core::v1::PersistentVolumeClaim,
        k8s_pb::api::core::v1::PodTemplate,
        k8s_pb::api::core::v1::ReplicationController,
        k8s_pb::api::core::v1::LimitRange,
        k8s_pb::api::core::v1::ResourceQuota,
        k8s_pb::api::apps::v1::Deployment,
        k8s_pb::api::apps::v1::StatefulSet,
        k8s_pb::api::apps::v1::ReplicaSet,
        k8s_pb::api::apps::v1::DaemonSet,
        k8s_pb::api::apps::v1::ControllerRevision,
        k8s_pb::api::batch::v1::Job,
        k8s_pb::api::batch::v1::CronJob,
        k8s_pb::api::coordination::v1::Lease,
        k8s_pb::api::rbac::v1::Role,
        k8s_pb::api::rbac::v1::ClusterRole,
        k8s_pb::api::rbac::v1::RoleBinding,
        k8s_pb::api::rbac::v1::ClusterRoleBinding,
        k8s_pb::api::networking::v1::Ingress,
        k8s_pb::api::networking::v1::IngressClass,
        k8s_pb::api::networking::v1::NetworkPolicy,
        k8s_pb::api::discovery::v1::EndpointSlice,
        k8s_pb::api::policy::v1::PodDisruptionBudget,
        k8s_pb::api::autoscaling::v1::HorizontalPodAutoscaler,
        k8s_pb::api::autoscaling::v2::HorizontalPodAutoscaler,
        k8s_pb::api::scheduling::v1::PriorityClass,
        k8s_pb::api::storage::v1::StorageClass,
        k8s_pb::api::storage::v1::CSIDriver,
        k8s_pb::api::storage::v1::CSINode,
        k8s_pb::api::storage::v1::CSIStorageCapacity,
        k8s_pb::api::storage::v1::VolumeAttachment,
        k8s_pb::api::node::v1::RuntimeClass,
        k8s_pb::api::certificates::v1::CertificateSigningRequest,
        k8s_pb::api::admissionregistration::v1::MutatingWebhookConfiguration,
        k8s_pb::api::admissionregistration::v1::ValidatingWebhookConfiguration,
        k8s_pb::api::flowcontrol::v1::FlowSchema,
        k8s_pb::api::flowcontrol::v1::PriorityLevelConfiguration,
        k8s_pb::api::events::v1::Event,
        k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
        k8s_pb::kube_aggregator::pkg::apis::apiregistration::v1::APIService,
    ],
    // Internal types and the storage versions of older servers, which k8s-pb keeps as plain
    // messages.
    named: [
        ("v1", "RangeAllocation") => k8s_pb::api::core::v1::RangeAllocation,
        ("flowcontrol.apiserver.k8s.io/v1beta1", "FlowSchema")
            => k8s_pb::api::flowcontrol::v1beta1::FlowSchema,
        ("flowcontrol.apiserver.k8s.io/v1beta1", "PriorityLevelConfiguration")
            => k8s_pb::api::flowcontrol::v1beta1::PriorityLevelConfiguration,
        ("flowcontrol.apiserver.k8s.io/v1beta2", "FlowSchema")
            => k8s_pb::api::flowcontrol::v1beta2::FlowSchema,
        ("flowcontrol.apiserver.k8s.io/v1beta2", "PriorityLevelConfiguration")
            => k8s_pb::api::flowcontrol::v1beta2::PriorityLevelConfiguration,
        ("flowcontrol.apiserver.k8s.io/v1beta3", "FlowSchema")
            => k8s_pb::api::flowcontrol::v1beta3::FlowSchema,
        ("flowcontrol.apiserver.k8s.io/v1beta3", "PriorityLevelConfiguration")
            => k8s_pb::api::flowcontrol::v1beta3::PriorityLevelConfiguration,
        ("coordination.k8s.io/v1beta1", "Lease") => k8s_pb::api::coordination::v1beta1::Lease,
        ("batch/v1beta1", "CronJob") => k8s_pb::api::batch::v1beta1::CronJob,
        ("networking.k8s.io/v1beta1", "Ingress") => k8s_pb::api::networking::v1beta1::Ingress,
        ("extensions/v1beta1", "Ingress") => k8s_pb::api::extensions::v1beta1::Ingress,
        ("policy/v1beta1", "PodDisruptionBudget")
            => k8s_pb::api::policy::v1beta1::PodDisruptionBudget,
        ("discovery.k8s.io/v1beta1", "EndpointSlice")
            => k8s_pb::api::discovery::v1beta1::EndpointSlice,
        ("events.k8s.io/v1beta1", "Event") => k8s_pb::api::events::v1beta1::Event,
        ("autoscaling/v2beta1", "HorizontalPodAutoscaler")
            => k8s_pb::api::autoscaling::v2beta1::HorizontalPodAutoscaler,
        ("autoscaling/v2beta2", "HorizontalPodAutoscaler")
            => k8s_pb::api::autoscaling::v2beta2::HorizontalPodAutoscaler,
        ("storage.k8s.io/v1beta1", "CSIStorageCapacity")
            => k8s_pb::api::storage::v1beta1::CSIStorageCapacity,
        ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition")
            => k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1beta1::CustomResourceDefinition,
    ],
);

// ---------------------------------------------------------------------------------------------
// The Debug grammar.

/// Nesting accepted in Debug text (prost itself stops decoding at 100 message levels).
const MAX_DEPTH: usize = 400;

/// One parsed Debug value.
#[derive(Debug, Clone, PartialEq)]
enum D {
    Str(String),
    Num(String),
    Bool(bool),
    /// `None`.
    Nothing,
    Some(Box<D>),
    Struct(String, Vec<(String, D)>),
    Tuple(String, Vec<D>),
    List(Vec<D>),
    /// A non-empty list of integers 0..=255, kept compact: what `bytes` fields print as.
    Bytes(Vec<u8>),
    Map(Vec<(D, D)>),
    /// A bare name: a message without fields (or an enum value).
    Ident(String),
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn err<T>(&self, what: &str) -> Result<T, String> {
        let near: String = self.s[self.pos..].chars().take(30).collect();
        Err(format!("{what} at byte {} (near {near:?})", self.pos))
    }

    fn skip_ws(&mut self) {
        let rest = &self.s[self.pos..];
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.s[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            self.err(&format!("expected `{c}`"))
        }
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let rest = &self.s[self.pos..];
        let len = rest.find(|c: char| !f(c)).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn ident(&mut self) -> &'a str {
        self.skip_ws();
        self.take_while(|c| c.is_ascii_alphanumeric() || c == '_' || c == '#')
    }

    /// Items up to `close`, separated by commas (a trailing comma allowed).
    fn seq<T>(
        &mut self,
        close: char,
        mut item: impl FnMut(&mut Self) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        let mut out = Vec::new();
        loop {
            if self.eat(close) {
                return Ok(out);
            }
            out.push(item(self)?);
            if !self.eat(',') {
                self.expect(close)?;
                return Ok(out);
            }
        }
    }

    fn value(&mut self) -> Result<D, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return self.err("nested too deeply");
        }
        let v = self.value_inner();
        self.depth -= 1;
        v
    }

    fn value_inner(&mut self) -> Result<D, String> {
        match self.peek() {
            None => self.err("unexpected end"),
            Some('"') => self.string().map(D::Str),
            Some('[') => {
                self.pos += 1;
                if let Some(bytes) = self.byte_list() {
                    return Ok(D::Bytes(bytes));
                }
                self.seq(']', Self::value).map(D::List)
            }
            Some('{') => {
                self.pos += 1;
                self.seq('}', |p| {
                    let k = p.value()?;
                    p.expect(':')?;
                    Ok((k, p.value()?))
                })
                .map(D::Map)
            }
            Some(c) if c == '-' || c.is_ascii_digit() => {
                let start = self.pos;
                self.pos += 1;
                let mut prev = c;
                let rest = &self.s[self.pos..];
                let len = rest
                    .find(|ch: char| {
                        let ok = ch.is_ascii_alphanumeric()
                            || ch == '.'
                            || ((ch == '-' || ch == '+') && matches!(prev, 'e' | 'E'));
                        prev = ch;
                        !ok
                    })
                    .unwrap_or(rest.len());
                self.pos += len;
                Ok(D::Num(self.s[start..self.pos].to_string()))
            }
            Some(c) if c.is_ascii_alphabetic() || c == '_' => {
                let name = self.ident();
                match self.peek() {
                    Some('{') => {
                        self.pos += 1;
                        let fields = self.seq('}', |p| {
                            let f = p.ident();
                            if f.is_empty() {
                                return p.err("expected a field name");
                            }
                            p.expect(':')?;
                            Ok((f.to_string(), p.value()?))
                        })?;
                        Ok(D::Struct(name.to_string(), fields))
                    }
                    Some('(') => {
                        self.pos += 1;
                        let mut items = self.seq(')', Self::value)?;
                        if name == "Some" && items.len() == 1 {
                            Ok(D::Some(Box::new(items.remove(0))))
                        } else {
                            Ok(D::Tuple(name.to_string(), items))
                        }
                    }
                    _ => Ok(match name {
                        "None" => D::Nothing,
                        "true" => D::Bool(true),
                        "false" => D::Bool(false),
                        "inf" | "NaN" => D::Num(name.to_string()),
                        _ => D::Ident(name.to_string()),
                    }),
                }
            }
            Some(_) => self.err("unexpected character"),
        }
    }

    /// After `[`: a whole list of integers 0..=255 (`1, 2, 3]`), consumed through `]`; else
    /// nothing is consumed.
    fn byte_list(&mut self) -> Option<Vec<u8>> {
        let start = self.pos;
        let mut out = Vec::new();
        loop {
            self.skip_ws();
            let digits = self.take_while(|c| c.is_ascii_digit());
            match digits.parse::<u8>() {
                Ok(b) if digits.len() <= 3 => out.push(b),
                _ => break,
            }
            let more = self.eat(',');
            if self.eat(']') {
                return Some(out);
            }
            if !more {
                break;
            }
        }
        self.pos = start;
        None
    }

    /// A Rust-escaped string literal.
    fn string(&mut self) -> Result<String, String> {
        self.expect('"')?;
        let mut out = String::new();
        let mut chars = self.s[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Ok(out);
                }
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    match e {
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        '0' => out.push('\0'),
                        '\\' | '"' | '\'' => out.push(e),
                        'u' => {
                            let mut hex = String::new();
                            if !matches!(chars.next(), Some((_, '{'))) {
                                return self.err("bad \\u escape");
                            }
                            for (_, h) in chars.by_ref() {
                                if h == '}' {
                                    break;
                                }
                                hex.push(h);
                            }
                            match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                                Some(ch) => out.push(ch),
                                None => return self.err("bad \\u escape"),
                            }
                        }
                        _ => return self.err("unknown escape"),
                    }
                }
                _ => out.push(c),
            }
        }
        self.err("unterminated string")
    }
}

fn parse_debug(text: &str) -> Result<D, String> {
    let mut p = Parser {
        s: text,
        pos: 0,
        depth: 0,
    };
    let v = p.value()?;
    if p.peek().is_some() {
        return p.err("trailing text");
    }
    Ok(v)
}

/// Converts the `Debug` text of a k8s-pb message into Kubernetes-style YAML values (see the
/// module docs for the rules).
pub fn debug_to_yaml(text: &str) -> Result<Value, String> {
    let d = parse_debug(text)?;
    Ok(item_value("", &d))
}

// ---------------------------------------------------------------------------------------------
// From the parsed tree to Kubernetes' JSON shape.

/// Fields whose zero value (0, false) is meaningful: pointers in Go, or fields the API always
/// prints. Every other zero or empty scalar is dropped, as `omitempty` would.
const KEEP_ZERO: &[&str] = &[
    "replicas",
    "automount_service_account_token",
    "immutable",
    "run_as_user",
    "run_as_group",
    "run_as_non_root",
    "fs_group",
    "privileged",
    "allow_privilege_escalation",
    "read_only_root_filesystem",
    "termination_grace_period_seconds",
    "deletion_grace_period_seconds",
    "active_deadline_seconds",
    "enable_service_links",
    "share_process_namespace",
    "host_users",
    "suspend",
    "parallelism",
    "completions",
    "backoff_limit",
    "ttl_seconds_after_finished",
    "allocate_load_balancer_node_ports",
    "ready",
    "started",
    "serving",
    "terminating",
    "restart_count",
    "exit_code",
    "served",
    "storage",
    "revision",
    "current_number_scheduled",
    "number_misscheduled",
    "desired_number_scheduled",
    "number_ready",
    "current_healthy",
    "desired_healthy",
    "disruptions_allowed",
    "expected_pods",
    "lease_transitions",
    "value",
    "allow_volume_expansion",
    "attached",
];

/// Fields of type `bytes` (or `map<string, bytes>`): their Debug is a list of integers.
const BYTES_FIELDS: &[&str] = &[
    "data",
    "binary_data",
    "raw",
    "ca_bundle",
    "certificate",
    "request",
    "patch",
    "pkix_public_key",
    "proof_of_possession",
];

/// Fields (with their message type) that Go embeds with `json:",inline"`: their fields are
/// the parent's in JSON.
const INLINE: &[(&str, &str)] = &[
    ("volume_source", "VolumeSource"),
    ("persistent_volume_source", "PersistentVolumeSource"),
    ("handler", "ProbeHandler"),
    ("ephemeral_container_common", "EphemeralContainerCommon"),
    ("local_object_reference", "LocalObjectReference"),
    ("rule_with_operations", "RuleWithOperations"),
    ("rule", "Rule"),
    ("ingress_rule_value", "IngressRuleValue"),
    ("device_configuration", "DeviceConfiguration"),
];

/// Tag of bytes that are not printable UTF-8 (the value is their base64).
const BYTES_TAG: &str = "binary";
/// Tag of bytes that are printable UTF-8 (the value is that text).
const TEXT_TAG: &str = "text";

/// A value in field position: `None` when it is left out (unset, empty or zero).
fn field_value(field: &str, d: &D) -> Option<Value> {
    let keep_zero = KEEP_ZERO.contains(&field);
    let v = match d {
        D::Nothing => return None,
        D::Some(inner) => match inner.as_ref() {
            // A set message is kept even when all its fields are empty (`emptyDir: {}`).
            D::Struct(..) | D::Ident(_) => item_value(field, inner),
            _ => field_value(field, inner)?,
        },
        D::Str(s) if s.is_empty() => return None,
        D::Num(n) if !keep_zero && is_zero(n) => return None,
        D::Bool(false) if !keep_zero => return None,
        D::List(v) if v.is_empty() => return None,
        D::Map(m) if m.is_empty() => return None,
        _ => item_value(field, d),
    };
    (!v.is_null()).then_some(v)
}

fn is_zero(n: &str) -> bool {
    n.parse::<f64>().is_ok_and(|f| f == 0.0)
}

/// A value in any position, nothing dropped at this level. `field` is the field it belongs to
/// (list items and map values inherit it), which says whether integer lists are bytes.
fn item_value(field: &str, d: &D) -> Value {
    match d {
        D::Str(s) => Value::String(s.clone()),
        D::Num(n) => number(n),
        D::Bool(b) => Value::Bool(*b),
        D::Nothing => Value::Null,
        D::Some(inner) => item_value(field, inner),
        D::Ident(name) if name.starts_with(|c: char| c.is_ascii_uppercase()) => {
            Value::Mapping(Mapping::new())
        }
        D::Ident(name) => Value::String(name.clone()),
        D::Bytes(bytes) if BYTES_FIELDS.contains(&field) => bytes_value(bytes),
        D::Bytes(bytes) => Value::Sequence(bytes.iter().map(|b| Value::from(*b)).collect()),
        D::List(items) => Value::Sequence(items.iter().map(|i| item_value(field, i)).collect()),
        D::Map(entries) => Value::Mapping(
            entries
                .iter()
                .map(|(k, v)| (Value::String(key_text(k)), item_value(field, v)))
                .collect(),
        ),
        D::Tuple(_, items) if items.len() == 1 => item_value(field, &items[0]),
        D::Tuple(_, items) => Value::Sequence(items.iter().map(|i| item_value(field, i)).collect()),
        D::Struct(name, fields) => struct_value(name, fields),
    }
}

fn key_text(k: &D) -> String {
    match k {
        D::Str(s) | D::Num(s) | D::Ident(s) => s.clone(),
        D::Bool(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

fn number(n: &str) -> Value {
    if let Ok(i) = n.parse::<i64>() {
        Value::Number(i.into())
    } else if let Ok(u) = n.parse::<u64>() {
        Value::Number(u.into())
    } else if let Ok(f) = n.parse::<f64>() {
        Value::Number(Number::from(f))
    } else {
        Value::String(n.to_string())
    }
}

/// Printable UTF-8 as `!text`, anything else as `!binary` base64.
fn bytes_value(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text)
            if !text
                .chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) =>
        {
            Value::Tagged(Box::new(TaggedValue {
                tag: Tag::new(TEXT_TAG),
                value: Value::String(text.to_string()),
            }))
        }
        _ => Value::Tagged(Box::new(TaggedValue {
            tag: Tag::new(BYTES_TAG),
            value: Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
        })),
    }
}

fn get<'d>(fields: &'d [(String, D)], name: &str) -> Option<&'d D> {
    fields
        .iter()
        .find(|(f, _)| f.strip_prefix("r#").unwrap_or(f) == name)
        .map(|(_, v)| unwrap_some(v))
}

fn unwrap_some(d: &D) -> &D {
    match d {
        D::Some(inner) => unwrap_some(inner),
        other => other,
    }
}

fn get_i64(fields: &[(String, D)], name: &str) -> Option<i64> {
    match get(fields, name)? {
        D::Num(n) => n.parse().ok(),
        _ => None,
    }
}

fn get_str<'d>(fields: &'d [(String, D)], name: &str) -> Option<&'d str> {
    match get(fields, name)? {
        D::Str(s) => Some(s),
        _ => None,
    }
}

fn raw_bytes(fields: &[(String, D)]) -> Vec<u8> {
    match get(fields, "raw") {
        Some(D::Bytes(bytes)) => bytes.clone(),
        _ => Vec::new(),
    }
}

fn struct_value(name: &str, fields: &[(String, D)]) -> Value {
    match name {
        "Time" | "Timestamp" => match get_i64(fields, "seconds") {
            Some(s) => Value::String(rfc3339(s, get_i64(fields, "nanos").unwrap_or(0), false)),
            None => Value::Null,
        },
        "MicroTime" => match get_i64(fields, "seconds") {
            Some(s) => Value::String(rfc3339(s, get_i64(fields, "nanos").unwrap_or(0), true)),
            None => Value::Null,
        },
        "Quantity" => Value::String(get_str(fields, "string").unwrap_or("").to_string()),
        "IntOrString" => match get_i64(fields, "type") {
            Some(1) => Value::String(get_str(fields, "str_val").unwrap_or("").to_string()),
            _ => Value::Number(get_i64(fields, "int_val").unwrap_or(0).into()),
        },
        "Duration" if fields.len() == 1 => {
            Value::String(go_duration(get_i64(fields, "duration").unwrap_or(0)))
        }
        // Embedded JSON: FieldsV1 (managedFields), RawExtension, CRD schema defaults/examples.
        "Json" | "RawExtension" | "FieldsV1" => {
            let raw = raw_bytes(fields);
            match serde_json::from_slice::<serde_json::Value>(&raw) {
                Ok(json) => serde_yaml::to_value(json).unwrap_or(Value::Null),
                Err(_) if raw.is_empty() => Value::Null,
                Err(_) => bytes_value(&raw),
            }
        }
        "JsonSchemaPropsOrArray" => match get(fields, "schema") {
            Some(schema) => item_value("schema", schema),
            None => field_value(
                "j_son_schemas",
                get(fields, "j_son_schemas").unwrap_or(&D::Nothing),
            )
            .unwrap_or(Value::Null),
        },
        "JsonSchemaPropsOrBool" => match get(fields, "schema") {
            Some(schema) => item_value("schema", schema),
            None => Value::Bool(matches!(get(fields, "allows"), Some(D::Bool(true)))),
        },
        "JsonSchemaPropsOrStringArray" => match get(fields, "schema") {
            Some(schema) => item_value("schema", schema),
            None => field_value("property", get(fields, "property").unwrap_or(&D::Nothing))
                .unwrap_or(Value::Null),
        },
        _ => {
            let mut m = Mapping::new();
            for (f, d) in fields {
                let f = f.strip_prefix("r#").unwrap_or(f);
                let Some(v) = field_value(f, d) else { continue };
                match (v, unwrap_some(d)) {
                    (Value::Mapping(inner), D::Struct(ty, _))
                        if INLINE.contains(&(f, ty.as_str())) =>
                    {
                        m.extend(inner);
                    }
                    (v, _) => {
                        m.insert(Value::String(json_name(name, f)), v);
                    }
                }
            }
            Value::Mapping(m)
        }
    }
}

/// Kubernetes' JSON name of the prost field `field` of message `message`.
fn json_name(message: &str, field: &str) -> String {
    if message == "JsonSchemaProps" {
        match field {
            "ref" => return "$ref".into(),
            "schema" => return "$schema".into(),
            _ if field.starts_with("x_kubernetes_") => return field.replace('_', "-"),
            _ => {}
        }
    }
    let special = match field {
        "non_resource_ur_ls" => "nonResourceURLs",
        "pod_cid_rs" => "podCIDRs",
        "server_address_by_client_cid_rs" => "serverAddressByClientCIDRs",
        "open_apiv3_schema" => "openAPIV3Schema",
        "target_ww_ns" => "targetWWNs",
        "scale_io" => "scaleIO",
        "a_pi_group" => "apiGroup",
        "u_id" => "uid",
        "j_son_schemas" => "JSONSchemas",
        _ => "",
    };
    if !special.is_empty() {
        return special.to_string();
    }
    let mut out = String::with_capacity(field.len());
    for (i, part) in field.split('_').enumerate() {
        if i == 0 {
            out.push_str(part);
            continue;
        }
        let acronym = match part {
            "ip" | "id" | "cidr" | "uid" | "uuid" | "cpu" | "uri" | "url" | "tls" | "ipc"
            | "pid" | "fqdn" | "api" => Some(part.to_ascii_uppercase()),
            "ips" => Some("IPs".to_string()),
            "cidrs" => Some("CIDRs".to_string()),
            _ => None,
        };
        match acronym {
            Some(a) => out.push_str(&a),
            None => {
                let mut cs = part.chars();
                if let Some(first) = cs.next() {
                    out.extend(first.to_uppercase());
                    out.push_str(cs.as_str());
                }
            }
        }
    }
    out
}

/// RFC 3339 in UTC: whole seconds for `Time`, microseconds for `MicroTime`.
pub(crate) fn rfc3339(seconds: i64, nanos: i64, micro: bool) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let (hh, mm, ss) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let frac = if micro {
        format!(".{:06}", nanos.clamp(0, 999_999_999) / 1000)
    } else if nanos > 0 {
        let f = format!("{:09}", nanos.min(999_999_999));
        format!(".{}", f.trim_end_matches('0'))
    } else {
        String::new()
    };
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}{frac}Z")
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A duration in nanoseconds as Go prints it (`1h2m3s`, `1.5s`, `250ms`, `0s`).
fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let ns = ns.unsigned_abs();
    if ns < 1_000_000_000 {
        let (unit, div) = if ns < 1_000 {
            ("ns", 1)
        } else if ns < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{sign}{}{unit}", frac_text(ns, div));
    }
    let total_s = ns / 1_000_000_000;
    let (h, m) = (total_s / 3600, total_s % 3600 / 60);
    let s = frac_text(ns % 60_000_000_000, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{sign}{s}s"),
        (0, m) => format!("{sign}{m}m{s}s"),
        (h, m) => format!("{sign}{h}h{m}m{s}s"),
    }
}

fn frac_text(n: u64, div: u64) -> String {
    let (whole, rest) = (n / div, n % div);
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let frac = format!("{rest:0width$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
    use std::collections::BTreeMap;

    fn wrap(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let env = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut out = MAGIC.to_vec();
        out.extend(env.encode_to_vec());
        out
    }

    fn yaml_of(value: &[u8]) -> (String, Value) {
        match decode(value).expect("has the magic") {
            Decoded::Yaml { text, .. } => {
                let v: Value = serde_yaml::from_str(&text).expect("valid YAML");
                (text, v)
            }
            other => panic!("not decoded: {other:?}"),
        }
    }

    fn meta(name: &str, ns: &str) -> meta::ObjectMeta {
        meta::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            uid: Some("0b6f4d2e-1111-2222-3333-444455556666".into()),
            resource_version: Some(String::new()),
            generation: Some(0),
            creation_timestamp: Some(meta::Time {
                seconds: Some(1_700_000_000),
                nanos: Some(0),
            }),
            labels: BTreeMap::from([("app".to_string(), "web \"front\"".to_string())]),
            ..Default::default()
        }
    }

    fn pod() -> core::Pod {
        let container = |name: &str, image: &str| core::Container {
            name: Some(name.into()),
            image: Some(image.into()),
            ports: vec![core::ContainerPort {
                container_port: Some(8080),
                protocol: Some("TCP".into()),
                host_port: Some(0),
                ..Default::default()
            }],
            tty: Some(false),
            resources: Some(core::ResourceRequirements {
                limits: BTreeMap::from([(
                    "cpu".to_string(),
                    k8s_pb::apimachinery::pkg::api::resource::Quantity {
                        string: Some("250m".into()),
                    },
                )]),
                ..Default::default()
            }),
            ..Default::default()
        };
        core::Pod {
            metadata: Some(meta("web-0", "shop")),
            spec: Some(core::PodSpec {
                node_name: Some("node-a".into()),
                automount_service_account_token: Some(false),
                host_network: Some(false),
                containers: vec![
                    container("app", "nginx:1.25"),
                    container("sidecar", "busybox:1.36"),
                ],
                volumes: vec![core::Volume {
                    name: Some("scratch".into()),
                    volume_source: Some(core::VolumeSource {
                        empty_dir: Some(core::EmptyDirVolumeSource::default()),
                        ..Default::default()
                    }),
                }],
                ..Default::default()
            }),
            status: Some(core::PodStatus {
                phase: Some("Pending".into()),
                pod_ip: Some("10.1.2.3".into()),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn a_value_whose_text_would_be_huge_is_not_rendered() {
        // 200,000 empty containers: 2 bytes of protobuf each, hundreds of bytes of text.
        let mut p = pod();
        if let Some(spec) = p.spec.as_mut() {
            spec.containers = vec![core::Container::default(); 200_000];
        }
        let value = wrap("v1", "Pod", p.encode_to_vec());
        assert!(value.len() < 1024 * 1024, "{} bytes", value.len());
        match decode(&value).expect("has the magic") {
            Decoded::NoDecoder { kind, reason, .. } => {
                assert_eq!(kind, "Pod");
                assert!(reason.contains("too large to render"), "{reason}");
            }
            other => panic!("rendered: {other:?}"),
        }
    }

    #[test]
    fn decodes_a_pod_to_kubernetes_yaml() {
        let value = wrap("v1", "Pod", pod().encode_to_vec());
        let (text, v) = yaml_of(&value);
        assert!(text.starts_with("apiVersion: v1\nkind: Pod\n"), "{text}");
        assert_eq!(v["metadata"]["name"], "web-0");
        assert_eq!(v["metadata"]["namespace"], "shop");
        assert_eq!(v["metadata"]["labels"]["app"], "web \"front\"");
        assert_eq!(v["metadata"]["creationTimestamp"], "2023-11-14T22:13:20Z");
        // Empty and zero scalars are left out.
        assert!(v["metadata"].get("resourceVersion").is_none(), "{text}");
        assert!(v["metadata"].get("generation").is_none(), "{text}");
        assert!(v["spec"].get("hostNetwork").is_none(), "{text}");
        // ... except where zero means something.
        assert_eq!(v["spec"]["automountServiceAccountToken"], false);
        assert_eq!(v["spec"]["nodeName"], "node-a");
        let containers = v["spec"]["containers"].as_sequence().unwrap();
        assert_eq!(containers.len(), 2);
        assert_eq!(containers[0]["name"], "app");
        assert_eq!(containers[0]["image"], "nginx:1.25");
        assert_eq!(containers[1]["name"], "sidecar");
        assert_eq!(containers[1]["image"], "busybox:1.36");
        assert_eq!(containers[0]["ports"][0]["containerPort"], 8080);
        assert!(containers[0]["ports"][0].get("hostPort").is_none());
        assert_eq!(containers[0]["resources"]["limits"]["cpu"], "250m");
        // A set but empty message stays (it says which volume type this is).
        assert_eq!(
            v["spec"]["volumes"][0]["emptyDir"],
            Value::Mapping(Mapping::new())
        );
        assert_eq!(v["status"]["podIP"], "10.1.2.3");
        assert_eq!(v["status"]["phase"], "Pending");
        assert!(!text.contains("None") && !text.contains("Some("), "{text}");
    }

    #[test]
    fn decodes_a_configmap_with_binary_data() {
        let cm = core::ConfigMap {
            metadata: Some(meta("settings", "shop")),
            data: BTreeMap::from([
                ("mode".to_string(), "fast".to_string()),
                ("empty".to_string(), String::new()),
                ("multi".to_string(), "line 1\nline 2\n".to_string()),
            ]),
            binary_data: BTreeMap::from([
                ("blob".to_string(), vec![0u8, 159, 146, 150, 255]),
                ("hello".to_string(), b"hi there".to_vec()),
            ]),
            immutable: Some(true),
        };
        let (text, v) = yaml_of(&wrap("v1", "ConfigMap", cm.encode_to_vec()));
        assert!(text.starts_with("# bytes fields"), "{text}");
        assert_eq!(v["kind"], "ConfigMap");
        assert_eq!(v["data"]["mode"], "fast");
        // Map values keep their empty strings.
        assert_eq!(v["data"]["empty"], "");
        assert_eq!(v["data"]["multi"], "line 1\nline 2\n");
        assert_eq!(v["immutable"], true);
        assert!(text.contains("blob: !binary AJ+Slv8="), "{text}");
        assert!(text.contains("hello: !text hi there"), "{text}");
        let Value::Tagged(blob) = &v["binaryData"]["blob"] else {
            panic!("blob not tagged: {text}")
        };
        assert_eq!(blob.tag, Tag::new("binary"));
        assert_eq!(blob.value, "AJ+Slv8=");
        let Value::Tagged(hello) = &v["binaryData"]["hello"] else {
            panic!("hello not tagged: {text}")
        };
        assert_eq!(hello.value, "hi there");
    }

    #[test]
    fn decodes_secret_bytes_and_service_int_or_string() {
        let secret = core::Secret {
            metadata: Some(meta("creds", "shop")),
            data: BTreeMap::from([("password".to_string(), b"hunter2".to_vec())]),
            r#type: Some("Opaque".into()),
            ..Default::default()
        };
        let (_, v) = yaml_of(&wrap("v1", "Secret", secret.encode_to_vec()));
        assert_eq!(v["type"], "Opaque");
        let Value::Tagged(pw) = &v["data"]["password"] else {
            panic!("password not tagged")
        };
        assert_eq!(pw.value, "hunter2");

        let svc = core::Service {
            metadata: Some(meta("web", "shop")),
            spec: Some(core::ServiceSpec {
                cluster_ip: Some("10.0.0.7".into()),
                cluster_ips: vec!["10.0.0.7".into()],
                ports: vec![core::ServicePort {
                    port: Some(80),
                    target_port: Some(k8s_pb::apimachinery::pkg::util::intstr::IntOrString {
                        r#type: Some(1),
                        int_val: Some(0),
                        str_val: Some("http".into()),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: None,
        };
        let (_, v) = yaml_of(&wrap("v1", "Service", svc.encode_to_vec()));
        assert_eq!(v["spec"]["clusterIP"], "10.0.0.7");
        assert_eq!(v["spec"]["clusterIPs"][0], "10.0.0.7");
        assert_eq!(v["spec"]["ports"][0]["targetPort"], "http");
        assert_eq!(v["spec"]["ports"][0]["port"], 80);
    }

    #[test]
    fn decodes_managed_fields_json_and_micro_time() {
        let lease = k8s_pb::api::coordination::v1::Lease {
            metadata: Some(meta::ObjectMeta {
                name: Some("kube-scheduler".into()),
                managed_fields: vec![meta::ManagedFieldsEntry {
                    manager: Some("kubectl".into()),
                    operation: Some("Apply".into()),
                    fields_v1: Some(meta::FieldsV1 {
                        raw: Some(br#"{"f:spec":{"f:holderIdentity":{}}}"#.to_vec()),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            spec: Some(k8s_pb::api::coordination::v1::LeaseSpec {
                holder_identity: Some("node-a_1234".into()),
                renew_time: Some(meta::MicroTime {
                    seconds: Some(0),
                    nanos: Some(123_456_789),
                }),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        let (text, v) = yaml_of(&wrap(
            "coordination.k8s.io/v1",
            "Lease",
            lease.encode_to_vec(),
        ));
        assert_eq!(v["apiVersion"], "coordination.k8s.io/v1");
        assert_eq!(v["spec"]["renewTime"], "1970-01-01T00:00:00.123456Z");
        assert_eq!(v["spec"]["leaseTransitions"], 0);
        let mf = &v["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "kubectl");
        assert!(
            mf["fieldsV1"]["f:spec"]["f:holderIdentity"].is_mapping(),
            "{text}"
        );
    }

    #[test]
    fn decodes_a_crd_schema_to_openapi_shape() {
        use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
        let json = |t: &str| ext::Json {
            raw: Some(t.as_bytes().to_vec()),
        };
        let string = ext::JsonSchemaProps {
            r#type: Some("string".into()),
            ..Default::default()
        };
        let spec_schema = ext::JsonSchemaProps {
            r#type: Some("object".into()),
            properties: BTreeMap::from([
                (
                    "size".to_string(),
                    ext::JsonSchemaProps {
                        r#type: Some("integer".into()),
                        default: Some(json("3")),
                        minimum: Some(1.0),
                        ..Default::default()
                    },
                ),
                (
                    "mode".to_string(),
                    ext::JsonSchemaProps {
                        r#type: Some("string".into()),
                        r#enum: vec![json("\"fast\""), json("\"safe\"")],
                        ..Default::default()
                    },
                ),
                (
                    "tags".to_string(),
                    ext::JsonSchemaProps {
                        r#type: Some("array".into()),
                        items: Some(Box::new(ext::JsonSchemaPropsOrArray {
                            schema: Some(Box::new(string.clone())),
                            j_son_schemas: vec![],
                        })),
                        ..Default::default()
                    },
                ),
                (
                    "labels".to_string(),
                    ext::JsonSchemaProps {
                        r#type: Some("object".into()),
                        additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool {
                            allows: Some(true),
                            schema: Some(Box::new(string)),
                        })),
                        ..Default::default()
                    },
                ),
                (
                    "extra".to_string(),
                    ext::JsonSchemaProps {
                        r#type: Some("object".into()),
                        x_kubernetes_preserve_unknown_fields: Some(true),
                        ..Default::default()
                    },
                ),
            ]),
            ..Default::default()
        };
        let crd = ext::CustomResourceDefinition {
            metadata: Some(meta::ObjectMeta {
                name: Some("widgets.example.com".into()),
                ..Default::default()
            }),
            spec: Some(ext::CustomResourceDefinitionSpec {
                group: Some("example.com".into()),
                scope: Some("Namespaced".into()),
                versions: vec![ext::CustomResourceDefinitionVersion {
                    name: Some("v1".into()),
                    served: Some(true),
                    storage: Some(false),
                    schema: Some(ext::CustomResourceValidation {
                        open_apiv3_schema: Some(spec_schema),
                    }),
                    subresources: Some(ext::CustomResourceSubresources {
                        status: Some(ext::CustomResourceSubresourceStatus {}),
                        scale: None,
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            status: None,
        };
        let (text, v) = yaml_of(&wrap(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            crd.encode_to_vec(),
        ));
        let version = &v["spec"]["versions"][0];
        assert_eq!(version["served"], true, "{text}");
        assert_eq!(version["storage"], false, "{text}");
        assert_eq!(
            version["subresources"]["status"],
            Value::Mapping(Mapping::new()),
            "{text}"
        );
        let props = &version["schema"]["openAPIV3Schema"]["properties"];
        assert_eq!(props["size"]["default"], 3, "{text}");
        assert_eq!(props["size"]["minimum"].as_f64(), Some(1.0), "{text}");
        assert_eq!(props["mode"]["enum"][1], "safe", "{text}");
        assert_eq!(props["tags"]["items"]["type"], "string", "{text}");
        assert_eq!(
            props["labels"]["additionalProperties"]["type"], "string",
            "{text}"
        );
        assert_eq!(
            props["extra"]["x-kubernetes-preserve-unknown-fields"], true,
            "{text}"
        );
    }

    #[test]
    fn decodes_a_large_binary_value() {
        let blob: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let cm = core::ConfigMap {
            metadata: Some(meta("big", "shop")),
            binary_data: BTreeMap::from([("blob".to_string(), blob.clone())]),
            ..Default::default()
        };
        let (_, v) = yaml_of(&wrap("v1", "ConfigMap", cm.encode_to_vec()));
        let Value::Tagged(t) = &v["binaryData"]["blob"] else {
            panic!("blob not tagged")
        };
        assert_eq!(
            t.value.as_str(),
            Some(
                base64::engine::general_purpose::STANDARD
                    .encode(&blob)
                    .as_str()
            )
        );
    }

    #[test]
    fn unknown_kinds_and_garbage_fall_back() {
        let value = wrap("example.com/v1", "Widget", vec![1, 2, 3]);
        let d = decode(&value).unwrap();
        assert!(matches!(d, Decoded::NoDecoder { .. }), "{d:?}");
        assert_eq!(
            d.note(),
            "Kubernetes protobuf object of kind Widget (apiVersion example.com/v1) — no \
             decoder; raw bytes below"
        );
        let bad_payload = wrap("v1", "Pod", vec![0xff, 0xff, 0xff]);
        assert!(matches!(
            decode(&bad_payload),
            Some(Decoded::NoDecoder { .. })
        ));
        assert!(matches!(
            decode(b"k8s\0\xff\xff\xff"),
            Some(Decoded::Invalid(_))
        ));
        assert_eq!(decode(b"{\"kind\":\"Pod\"}"), None);
        assert!(!is_kube_proto(b"k8s"));
    }

    #[test]
    fn the_table_covers_the_common_kinds() {
        for want in [
            ("v1", "Pod"),
            ("v1", "ConfigMap"),
            ("v1", "Secret"),
            ("v1", "Service"),
            ("v1", "Endpoints"),
            ("v1", "Node"),
            ("v1", "Namespace"),
            ("v1", "ServiceAccount"),
            ("v1", "Event"),
            ("v1", "PersistentVolume"),
            ("v1", "PersistentVolumeClaim"),
            ("apps/v1", "Deployment"),
            ("apps/v1", "StatefulSet"),
            ("apps/v1", "ReplicaSet"),
            ("apps/v1", "DaemonSet"),
            ("coordination.k8s.io/v1", "Lease"),
            ("rbac.authorization.k8s.io/v1", "Role"),
            ("rbac.authorization.k8s.io/v1", "ClusterRole"),
            ("rbac.authorization.k8s.io/v1", "RoleBinding"),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ] {
            assert!(KINDS.contains(&want), "{want:?} missing");
        }
    }

    #[test]
    fn parses_the_debug_grammar() {
        let v = debug_to_yaml(
            r#"Thing { r#type: Some("a\"b\\c\n\u{1f}é"), n: Some(-1.5e-7), xs: [1, 2], m: {"k": Some(Other { on: Some(true) })}, unit: Some(Empty), t: Some(Time { seconds: None, nanos: None }), }"#,
        )
        .unwrap();
        assert_eq!(v["type"], "a\"b\\c\n\u{1f}é");
        assert_eq!(v["n"].as_f64(), Some(-1.5e-7));
        assert_eq!(v["xs"][1], 2);
        assert_eq!(v["m"]["k"]["on"], true);
        assert_eq!(v["unit"], Value::Mapping(Mapping::new()));
        assert!(v.get("t").is_none());
        assert!(debug_to_yaml("Thing { a: Some(\"x) }").is_err());
        assert!(debug_to_yaml("Thing { a: 1 } extra").is_err());
        let deep = format!("{}1{}", "Some(".repeat(1000), ")".repeat(1000));
        assert!(debug_to_yaml(&deep).is_err());
    }

    #[test]
    fn names_follow_kubernetes_json() {
        for (msg, snake, camel) in [
            ("ObjectMeta", "creation_timestamp", "creationTimestamp"),
            ("Pod", "api_version", "apiVersion"),
            ("PodStatus", "pod_ip", "podIP"),
            ("PodStatus", "pod_ips", "podIPs"),
            ("PodSpec", "host_ipc", "hostIPC"),
            ("NodeSpec", "pod_cid_rs", "podCIDRs"),
            ("NodeSpec", "provider_id", "providerID"),
            ("PolicyRule", "non_resource_ur_ls", "nonResourceURLs"),
            ("Volume", "downward_api", "downwardAPI"),
            (
                "CustomResourceValidation",
                "open_apiv3_schema",
                "openAPIV3Schema",
            ),
            (
                "JsonSchemaProps",
                "x_kubernetes_preserve_unknown_fields",
                "x-kubernetes-preserve-unknown-fields",
            ),
            ("JsonSchemaProps", "ref", "$ref"),
            ("Container", "image", "image"),
        ] {
            assert_eq!(json_name(msg, snake), camel);
        }
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(rfc3339(0, 0, false), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400, 0, false), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1, 500_000_000, false), "1969-12-31T23:59:59.5Z");
        assert_eq!(
            rfc3339(1_700_000_000, 1_000, true),
            "2023-11-14T22:13:20.000001Z"
        );
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(90_500_000_000), "1m30.5s");
        assert_eq!(go_duration(250_000_000), "250ms");
    }
}
