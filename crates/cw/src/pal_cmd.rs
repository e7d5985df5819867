//! `cw providers` and `cw call`: the PAL registry and one call through the pipeline.

use std::sync::Arc;

use clap::Args;
use pal::{Capability, MetricsRecorder, Pipeline, Registry};
use serde_json::{Value, json};

use crate::error::CliError;
use crate::exit;
use crate::output::{emit, to_json_text};
use crate::providers::adapter_factories;

#[derive(Debug, Args)]
pub(crate) struct ProvidersArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Include each adapter's full health report.
    #[arg(short, long)]
    verbose: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// The capability, e.g. `ads`.
    capability: String,
    /// The operation, e.g. `report`.
    op: String,
    /// Named arguments as a JSON object (e.g. `{"campaign_id":"c1"}`), or `@FILE`.
    #[arg(long, default_value = "{}")]
    input: String,
    /// Use this adapter for this one call instead of the configured one.
    #[arg(long)]
    adapter: Option<String>,
    /// Print one JSON object `{result|error, metrics}` instead of text.
    #[arg(long)]
    json: bool,
}

fn registry(pipeline: Arc<Pipeline>) -> Result<Registry, CliError> {
    Registry::new(adapter_factories(), pipeline).map_err(|e| CliError::Registry { message: e.to_string() })
}

pub(crate) async fn providers(args: ProvidersArgs) -> Result<u8, CliError> {
    let registry = registry(Arc::new(Pipeline::default()))?;
    let listing = registry.list(args.verbose).await;
    if args.json {
        emit(&to_json_text(&json!({ "source": registry.source().to_string(), "providers": listing })));
        return Ok(exit::OK);
    }
    let mut text = format!("source: {}\n", registry.source());
    let width = listing.iter().map(|r| r.capability.as_str().len()).max().unwrap_or(10).max(10);
    let adapter_width = listing.iter().map(|r| r.adapter.len()).max().unwrap_or(7).max(7);
    text.push_str(&format!("{:<width$}  {:<adapter_width$}  HEALTHY\n", "CAPABILITY", "ADAPTER"));
    for row in &listing {
        let mut line = format!(
            "{:<width$}  {:<adapter_width$}  {}",
            row.capability.as_str(),
            row.adapter,
            if row.healthy { "yes" } else { "no" }
        );
        if row.overridden {
            line.push_str("  (override)");
        }
        if let Some(health) = &row.health {
            line.push_str(&format!("  status={}", health.status.as_str()));
            if let Some(reason) = &health.reason {
                line.push_str(&format!(" reason={reason}"));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    emit(&text);
    Ok(exit::OK)
}

fn parse_input(input: &str) -> Result<Value, CliError> {
    let (text, origin) = match input.strip_prefix('@') {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|source| CliError::Read { path: path.into(), source })?,
            format!("{path}: "),
        ),
        None => (input.to_owned(), String::new()),
    };
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Argument { flag: "input", message: format!("{origin}invalid JSON: {e}") })?;
    if !value.is_object() {
        return Err(CliError::Argument {
            flag: "input",
            message: format!("{origin}must be a JSON object of named arguments, e.g. {{\"key\": \"value\"}}"),
        });
    }
    Ok(value)
}

pub(crate) async fn call(args: CallArgs) -> Result<u8, CliError> {
    let capability: Capability = args.capability.parse().map_err(|message| CliError::Usage { message })?;
    capability.op(&args.op).map_err(|message| CliError::Usage { message })?;
    let input = parse_input(&args.input)?;
    let pipeline = Arc::new(Pipeline::default());
    let recorder = Arc::new(MetricsRecorder::default());
    pipeline.add_hook(recorder.clone());
    let registry = registry(pipeline)?;
    let outcome = registry.call_json(capability, &args.op, &input, args.adapter.as_deref()).await;
    let metrics = recorder.take().pop();
    let error = match outcome {
        Ok(result) => {
            if args.json {
                emit(&to_json_text(&json!({ "result": result, "metrics": metrics })));
            } else {
                emit(&to_json_text(&result));
                if let Some(event) = &metrics {
                    eprintln!("{}", describe_event(event));
                }
            }
            return Ok(exit::OK);
        }
        Err(pal::CallError::Provider(error)) => error,
        Err(other) => return Err(CliError::Registry { message: other.to_string() }),
    };
    if args.json {
        emit(&to_json_text(&json!({ "error": error, "metrics": metrics })));
    } else if let Some(event) = &metrics {
        eprintln!("{}", describe_event(event));
    }
    Err(CliError::Provider(error))
}

fn describe_event(event: &pal::MetricsEvent) -> String {
    format!(
        "metrics: capability={} adapter={} op={} latency_ms={} attempts={} outcome={}{}",
        event.capability,
        event.adapter,
        event.op,
        event.latency_ms,
        event.attempts,
        if event.outcome == pal::pipeline::Outcome::Ok { "ok" } else { "error" },
        event
            .error_class
            .map(|c| format!(" error_class={}", serde_json::to_value(c).unwrap_or_default().as_str().unwrap_or("")))
            .unwrap_or_default()
    )
}
