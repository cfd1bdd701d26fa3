//! A minimal OTLP/HTTP trace collector for tests, and the decoding of what
//! it received into flat spans.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use prost::Message;

/// What the collector received: every request body.
#[derive(Clone, Default)]
pub struct Received(pub Arc<Mutex<Vec<(String, Bytes)>>>);

/// A minimal OTLP/HTTP receiver: `POST /v1/traces`, any body, 200 and an
/// empty (valid) `ExportTraceServiceResponse`.
pub async fn collector() -> (u16, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind collector");
    let port = listener.local_addr().expect("addr").port();
    let received = Received::default();
    let store = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let store = store.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        let kind = req
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        let body = req.into_body().collect().await.map(|b| b.to_bytes());
                        if let Ok(body) = body {
                            store
                                .0
                                .lock()
                                .unwrap()
                                .push((format!("{path} {kind}"), body));
                        }
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (port, received)
}

/// One exported span, flattened.
#[derive(Debug)]
pub struct Span {
    /// The exporting process's `service.name`.
    pub service: String,
    pub name: String,
    pub trace: Vec<u8>,
    pub id: Vec<u8>,
    pub parent: Vec<u8>,
    pub attrs: HashMap<String, String>,
    pub events: Vec<(String, HashMap<String, String>)>,
}

pub fn attrs(kvs: &[KeyValue]) -> HashMap<String, String> {
    kvs.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                Some(any_value::Value::IntValue(i)) => i.to_string(),
                Some(any_value::Value::BoolValue(b)) => b.to_string(),
                Some(any_value::Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

pub fn decode(bodies: &[(String, Bytes)]) -> (Vec<Span>, Vec<HashMap<String, String>>) {
    let mut spans = Vec::new();
    let mut resources = Vec::new();
    for (what, body) in bodies {
        assert_eq!(what, "/v1/traces application/x-protobuf");
        let req = ExportTraceServiceRequest::decode(body.as_ref()).expect("OTLP protobuf");
        for rs in req.resource_spans {
            let resource = attrs(&rs.resource.map(|r| r.attributes).unwrap_or_default());
            let service = resource.get("service.name").cloned().unwrap_or_default();
            resources.push(resource);
            for s in rs.scope_spans.into_iter().flat_map(|ss| ss.spans) {
                spans.push(Span {
                    service: service.clone(),
                    name: s.name,
                    trace: s.trace_id,
                    id: s.span_id,
                    parent: s.parent_span_id,
                    attrs: attrs(&s.attributes),
                    events: s
                        .events
                        .iter()
                        .map(|e| (e.name.clone(), attrs(&e.attributes)))
                        .collect(),
                });
            }
        }
    }
    (spans, resources)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Panics when any of `needles` is anywhere in the exported bytes.
pub fn assert_not_exported(bodies: &[(String, Bytes)], needles: &[&str]) {
    for (_, body) in bodies {
        for needle in needles {
            let found = body.windows(needle.len()).any(|w| w == needle.as_bytes());
            assert!(!found, "`{needle}` was exported");
        }
    }
}
