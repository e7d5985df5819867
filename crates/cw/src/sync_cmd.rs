//! `cw sync`, `cw plan`, `cw approve`, `cw apply`, `cw status` and `cw blackbox`: the sync
//! engine's commands. Everything they decide is `cw_orchestrator`'s; this module loads the
//! config, builds the provider instances, opens the state store, and prints.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::{Args, Subcommand};
use cw_orchestrator::config::CwConfig;
use cw_orchestrator::run::{
    Engine, Observer, Phase, PlanFile, Prepared, Providers, Quiet, RunError, RunOptions, RunReport, new_run_id,
};
use cw_orchestrator::state::{BlackboxFilter, DEFAULT_FILE_NAME, RunStatus, StateStore, resolve_state_dir};
use indicatif::{ProgressBar, ProgressStyle};
use pal::Pipeline;
use pal::inventory::Feature;
use serde_json::{Value, json};

use crate::error::CliError;
use crate::exit;
use crate::output::{emit, read_json, to_json_text, write_file};
use crate::providers::inventory_instance;

/// The options every engine command shares.
#[derive(Debug, Clone, Default)]
pub(crate) struct Globals {
    pub(crate) config: Option<PathBuf>,
    pub(crate) state_dir: Option<PathBuf>,
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SyncArgs {
    /// Only this pair.
    #[arg(long)]
    pair: Option<String>,
    /// Only this feature (repeatable).
    #[arg(long = "feature")]
    features: Vec<String>,
    /// Plan and report; write nothing, commit nothing.
    #[arg(long)]
    dry_run: bool,
    /// Lift the mass-delete guard for this run only.
    #[arg(long)]
    allow_mass_delete: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// Only this pair.
    #[arg(long)]
    pair: Option<String>,
    /// Only this feature (repeatable).
    #[arg(long = "feature")]
    features: Vec<String>,
    /// Let this plan's removals exceed the mass-delete limit.
    #[arg(long)]
    allow_mass_delete: bool,
    /// Write the plan file here (for `cw approve` and `cw apply`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Record the approval at once (otherwise `cw approve PLAN_FILE` must).
    #[arg(long)]
    approve: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PlanFileArgs {
    /// A plan file written by `cw plan --out`.
    plan_file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BlackboxCommand {
    /// List the items that keep failing (quarantined or counting).
    List {
        /// Only this pair.
        #[arg(long)]
        pair: Option<String>,
    },
    /// Forget failures (all, a pair's, or one key's): the items are tried again next run.
    Clear {
        /// Only this pair.
        #[arg(long)]
        pair: Option<String>,
        /// Only this item key (e.g. `tmdb:949`).
        #[arg(long)]
        key: Option<String>,
    },
}

fn config_path(globals: &Globals) -> PathBuf {
    globals.config.clone().unwrap_or_else(|| PathBuf::from("cw.yaml"))
}

fn load_config(globals: &Globals) -> Result<CwConfig, CliError> {
    let path = config_path(globals);
    if globals.config.is_none() && !path.exists() {
        return Err(CliError::Usage {
            message: "no cw.yaml here: give --config FILE (see examples/quickstart.yaml)".to_owned(),
        });
    }
    CwConfig::load(&path).map_err(|e| CliError::Usage { message: e.to_string() })
}

fn open_store(globals: &Globals, config: Option<&CwConfig>) -> Result<StateStore, CliError> {
    let dir = resolve_state_dir(globals.state_dir.as_deref(), config.and_then(|c| c.state_dir.as_deref()), |key| {
        std::env::var_os(key)
    })
    .map_err(|e| CliError::Usage { message: e.to_string() })?;
    let options = config.map(|c| c.sync.state_options()).unwrap_or_default();
    StateStore::open_with(dir.join(DEFAULT_FILE_NAME), options, Arc::new(cw_orchestrator::state::SystemClock))
        .map_err(|e| CliError::Usage { message: e.to_string() })
}

/// Builds every provider instance of the config and a pipeline that redacts their secrets.
fn build_providers(config: &CwConfig) -> Result<(Providers, Pipeline), CliError> {
    let mut providers = Providers::new();
    let mut secrets = Vec::new();
    for instance in config.providers.values() {
        let (provider, held) = inventory_instance(&instance.name, &instance.adapter, &instance.settings)
            .map_err(|message| CliError::Usage { message: format!("{}: {message}", config.file.display()) })?;
        providers.insert(instance.name.clone(), provider);
        secrets.extend(held);
    }
    let pipeline = Pipeline::default();
    pipeline.set_redactor(pal::secret::Redactor::new(secrets.iter()));
    Ok((providers, pipeline))
}

fn parse_features(names: &[String]) -> Result<Vec<Feature>, CliError> {
    names
        .iter()
        .map(|n| n.parse::<Feature>().map_err(|message| CliError::Argument { flag: "feature", message }))
        .collect()
}

fn run_error(error: RunError) -> CliError {
    CliError::Usage { message: error.to_string() }
}

/// Progress bars on stderr when it is a terminal (and not `--json`); nothing otherwise.
struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

impl Observer for Bars {
    fn start(&self, pair: &str, feature: Option<Feature>, phase: Phase, total: u64) {
        let bar = ProgressBar::new(total);
        let style = ProgressStyle::with_template("{prefix:>28} {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        let what = match (phase, feature) {
            (Phase::Snapshot, _) => "snapshot".to_owned(),
            (Phase::Apply, Some(f)) => format!("apply {f}"),
            (Phase::Verify, Some(f)) => format!("verify {f}"),
            (_, None) => format!("{phase:?}").to_lowercase(),
        };
        bar.set_prefix(format!("{pair} {what}"));
        if let Ok(mut slot) = self.bar.lock() {
            *slot = Some(bar);
        }
    }

    fn advance(&self, done: u64) {
        if let Ok(slot) = self.bar.lock()
            && let Some(bar) = slot.as_ref()
        {
            bar.inc(done);
        }
    }

    fn finish(&self) {
        if let Ok(mut slot) = self.bar.lock()
            && let Some(bar) = slot.take()
        {
            bar.finish_and_clear();
        }
    }
}

fn observer(globals: &Globals) -> Box<dyn Observer> {
    if !globals.json && std::io::stderr().is_terminal() {
        Box::new(Bars { bar: Mutex::new(None) })
    } else {
        Box::new(Quiet)
    }
}

pub(crate) async fn sync(globals: Globals, args: SyncArgs) -> Result<u8, CliError> {
    let config = load_config(&globals)?;
    let store = open_store(&globals, Some(&config))?;
    let (providers, pipeline) = build_providers(&config)?;
    let observer = observer(&globals);
    let engine = Engine::new(&config, &store, &pipeline, &providers, observer.as_ref());
    let options = RunOptions {
        pair: args.pair,
        features: parse_features(&args.features)?,
        dry_run: args.dry_run,
        allow_mass_delete: args.allow_mass_delete,
    };
    let prepared = engine.prepare(&options, &new_run_id(store.now())).await.map_err(run_error)?;
    let report = engine.sync(&prepared).await.map_err(run_error)?;
    print_report(&globals, &report);
    // The process ends here: handing the inventories' memory back to the OS at exit is far
    // cheaper than freeing hundreds of thousands of small allocations one by one. Everything
    // durable (state store, providers) is committed and still dropped normally.
    std::mem::forget(prepared);
    std::mem::forget(engine);
    Ok(report_exit(&report))
}

pub(crate) async fn plan(globals: Globals, args: PlanArgs) -> Result<u8, CliError> {
    let config = load_config(&globals)?;
    let store = open_store(&globals, Some(&config))?;
    let (providers, pipeline) = build_providers(&config)?;
    let observer = observer(&globals);
    let engine = Engine::new(&config, &store, &pipeline, &providers, observer.as_ref());
    let options = RunOptions {
        pair: args.pair,
        features: parse_features(&args.features)?,
        dry_run: false,
        allow_mass_delete: args.allow_mass_delete,
    };
    let prepared = engine.prepare(&options, &new_run_id(store.now())).await.map_err(run_error)?;
    let approval = engine.record_for_approval(&prepared, args.approve).map_err(run_error)?;
    let file = prepared.plan_file();
    if let Some(out) = &args.out {
        write_file(out, to_json_text(&file).as_bytes())?;
    }
    if globals.json {
        emit(&to_json_text(&json!({
            "plan": file.plan,
            "plan_hash": file.plan.plan_hash,
            "writes": file.steps,
            "findings": file.witness.findings,
            "approved": approval.is_some(),
            "out": args.out,
        })));
    } else {
        emit(&plan_text(&prepared, approval.is_some(), args.out.as_deref()));
    }
    Ok(exit::OK)
}

pub(crate) async fn approve(globals: Globals, args: PlanFileArgs) -> Result<u8, CliError> {
    let config = load_config(&globals)?;
    let store = open_store(&globals, Some(&config))?;
    let providers = Providers::new();
    let pipeline = Pipeline::default();
    let engine = Engine::new(&config, &store, &pipeline, &providers, &Quiet);
    let file: PlanFile = read_json(&args.plan_file)?;
    match engine.approve(&file) {
        Ok(approval) => {
            if globals.json {
                emit(&to_json_text(&json!({ "plan_hash": file.plan.plan_hash, "approval_witness_hash": approval })));
            } else {
                emit(&format!("approved plan {}\n", file.plan.plan_hash));
            }
            Ok(exit::OK)
        }
        Err(error) => refused(&args.plan_file, error),
    }
}

pub(crate) async fn apply(globals: Globals, args: PlanFileArgs) -> Result<u8, CliError> {
    let config = load_config(&globals)?;
    let store = open_store(&globals, Some(&config))?;
    let (providers, pipeline) = build_providers(&config)?;
    let observer = observer(&globals);
    let engine = Engine::new(&config, &store, &pipeline, &providers, observer.as_ref());
    let file: PlanFile = read_json(&args.plan_file)?;
    match engine.apply(&file).await {
        Ok(report) => {
            print_report(&globals, &report);
            Ok(report_exit(&report))
        }
        Err(error) => refused(&args.plan_file, error),
    }
}

/// A refusal is an answer ("no"), exit 1; anything else is an error, exit 2.
fn refused(path: &Path, error: RunError) -> Result<u8, CliError> {
    match error {
        RunError::Refused(message) | RunError::InvalidPlan(message) => {
            eprintln!("refused: {}: {message}", path.display());
            Ok(exit::REFUSED)
        }
        other => Err(run_error(other)),
    }
}

pub(crate) async fn status(globals: Globals) -> Result<u8, CliError> {
    let config = load_config(&globals)?;
    let store = open_store(&globals, Some(&config))?;
    let state_error = |e: cw_orchestrator::state::StateError| CliError::Usage { message: e.to_string() };
    let blackbox = store.list_blackbox(None).map_err(state_error)?;
    let mut pairs = Vec::new();
    for pair in &config.pairs {
        let runs = store.runs(Some(&pair.id), 5).map_err(state_error)?;
        let mut unresolved = serde_json::Map::new();
        for feature in pair.features.keys() {
            let count = store.unresolved(&pair.id, *feature).map_err(state_error)?.len();
            unresolved.insert(feature.as_str().to_owned(), json!(count));
        }
        let in_box: Vec<_> = blackbox.iter().filter(|b| b.pair == pair.id).collect();
        pairs.push(json!({
            "pair": pair.id,
            "source": pair.source,
            "target": pair.target,
            "mode": pair.mode,
            "features": pair.features.keys().collect::<Vec<_>>(),
            "last_runs": runs,
            "unresolved": unresolved,
            "blackbox": { "failing": in_box.len(), "quarantined": in_box.iter().filter(|b| b.quarantined).count() },
        }));
    }
    let status = json!({ "state_file": store.path(), "pairs": pairs });
    if globals.json {
        emit(&to_json_text(&status));
        return Ok(exit::OK);
    }
    let mut text = format!("state: {}\n", store.path().display());
    for pair in &pairs {
        text.push_str(&format!(
            "\n{} ({} → {}, {})\n",
            pair["pair"].as_str().unwrap_or_default(),
            pair["source"].as_str().unwrap_or_default(),
            pair["target"].as_str().unwrap_or_default(),
            pair["mode"].as_str().unwrap_or_default(),
        ));
        match pair["last_runs"].as_array().and_then(|r| r.first()) {
            Some(run) => text.push_str(&format!(
                "  last run: {} at {} ({})\n",
                run["status"].as_str().unwrap_or_default(),
                run["finished_at"].as_str().unwrap_or_default(),
                run["run_id"].as_str().unwrap_or_default(),
            )),
            None => text.push_str("  last run: never\n"),
        }
        let unresolved: u64 =
            pair["unresolved"].as_object().map(|m| m.values().filter_map(Value::as_u64).sum()).unwrap_or(0);
        text.push_str(&format!(
            "  unresolved: {unresolved}   blackbox: {} failing, {} quarantined\n",
            pair["blackbox"]["failing"], pair["blackbox"]["quarantined"]
        ));
    }
    emit(&text);
    Ok(exit::OK)
}

pub(crate) async fn blackbox(globals: Globals, command: BlackboxCommand) -> Result<u8, CliError> {
    let config =
        if globals.config.is_some() || Path::new("cw.yaml").exists() { Some(load_config(&globals)?) } else { None };
    let store = open_store(&globals, config.as_ref())?;
    let state_error = |e: cw_orchestrator::state::StateError| CliError::Usage { message: e.to_string() };
    match command {
        BlackboxCommand::List { pair } => {
            let entries = store.list_blackbox(pair.as_deref()).map_err(state_error)?;
            if globals.json {
                emit(&to_json_text(&json!({ "entries": entries })));
                return Ok(exit::OK);
            }
            let mut text = format!("{} item(s) in the blackbox\n", entries.len());
            for e in &entries {
                let until = e
                    .quarantined_until
                    .filter(|_| e.quarantined)
                    .map(|u| format!("quarantined until {u}"))
                    .unwrap_or_else(|| "counting".to_owned());
                text.push_str(&format!(
                    "  {} {} {}: {} failure(s), {until}{}\n",
                    e.pair,
                    e.feature,
                    e.key,
                    e.failures,
                    e.reason.as_deref().map(|r| format!(" — {r}")).unwrap_or_default()
                ));
            }
            emit(&text);
        }
        BlackboxCommand::Clear { pair, key } => {
            let cleared = store
                .clear_blackbox(BlackboxFilter { pair: pair.as_deref(), key: key.as_deref() })
                .map_err(state_error)?;
            if globals.json {
                emit(&to_json_text(&json!({ "cleared": cleared })));
            } else {
                emit(&format!("cleared {cleared} blackbox entr{}\n", if cleared == 1 { "y" } else { "ies" }));
            }
        }
    }
    Ok(exit::OK)
}

fn report_exit(report: &RunReport) -> u8 {
    if report.pairs.iter().all(|p| p.status == RunStatus::Ok) { exit::OK } else { exit::REFUSED }
}

fn print_report(globals: &Globals, report: &RunReport) {
    if globals.json {
        emit(&to_json_text(report));
        return;
    }
    emit(&report_text(report));
}

fn status_name(status: RunStatus) -> &'static str {
    status.as_str()
}

fn severity_name(severity: admit_core::Severity) -> &'static str {
    match severity {
        admit_core::Severity::Error => "error",
        admit_core::Severity::Warning => "warning",
        admit_core::Severity::Info => "info",
    }
}

/// The human summary: one row per pair and feature, then the findings.
fn report_text(report: &RunReport) -> String {
    let mut text = String::new();
    let pair_width = report.pairs.iter().map(|p| p.pair.len()).max().unwrap_or(4).max(4);
    text.push_str(&format!(
        "{:<pair_width$}  {:<9}  {:>7}  {:>7}  {:>7}  {:>7}  {:>10}  STATUS\n",
        "PAIR", "FEATURE", "ADDED", "UPDATED", "REMOVED", "BLOCKED", "UNRESOLVED"
    ));
    for pair in &report.pairs {
        if pair.features.is_empty() {
            text.push_str(&format!(
                "{:<pair_width$}  {:<9}  {:>7}  {:>7}  {:>7}  {:>7}  {:>10}  {}\n",
                pair.pair,
                "-",
                "-",
                "-",
                "-",
                "-",
                "-",
                status_name(pair.status)
            ));
        }
        for (feature, f) in &pair.features {
            let c = f.counts;
            text.push_str(&format!(
                "{:<pair_width$}  {:<9}  {:>7}  {:>7}  {:>7}  {:>7}  {:>10}  {}\n",
                pair.pair,
                feature.as_str(),
                c.added,
                c.updated,
                c.removed,
                c.blocked,
                c.unresolved + c.unconfirmed,
                status_name(pair.status)
            ));
        }
    }
    let findings: Vec<_> = report
        .pairs
        .iter()
        .flat_map(|p| p.findings.iter().chain(p.features.values().flat_map(|f| f.findings.iter())))
        .filter(|f| f.severity != admit_core::Severity::Info)
        .collect();
    for finding in findings {
        text.push_str(&format!("{}: [{}] {}\n", severity_name(finding.severity), finding.rule_id, finding.message));
    }
    if report.nothing_to_do() {
        text.push_str("nothing to do: everything is in sync\n");
    } else if report.dry_run {
        text.push_str("dry run: nothing was written\n");
    }
    text.push_str(&format!("plan {}\n", report.plan_hash));
    text
}

/// How many writes of one kind `cw plan` lists before it summarises the rest.
const PLAN_LINES_SHOWN: usize = 25;

fn plan_text(prepared: &Prepared, approved: bool, out: Option<&Path>) -> String {
    let mut text = String::new();
    for pair in &prepared.pairs {
        for run in &pair.features {
            for (side, writes) in [("target", &run.plan.to_target), ("source", &run.plan.to_source)] {
                let instance = if side == "target" { &pair.pair.target } else { &pair.pair.source };
                for (sign, items) in [('+', &writes.adds), ('-', &writes.removals)] {
                    for item in items.iter().take(PLAN_LINES_SHOWN) {
                        text.push_str(&format!(
                            "{sign} {} {} {instance}: {}{}\n",
                            pair.pair.id,
                            run.feature,
                            item.key,
                            title(&item.item)
                        ));
                    }
                    if items.len() > PLAN_LINES_SHOWN {
                        text.push_str(&format!(
                            "{sign} {} {} {instance}: … and {} more (all of them: --out FILE or --json)\n",
                            pair.pair.id,
                            run.feature,
                            items.len() - PLAN_LINES_SHOWN
                        ));
                    }
                }
            }
        }
    }
    for finding in &prepared.witness.findings {
        text.push_str(&format!("{}: [{}] {}\n", severity_name(finding.severity), finding.rule_id, finding.message));
    }
    if prepared.is_empty() {
        text.push_str("nothing to do: everything is in sync\n");
    }
    if let Some(out) = out {
        text.push_str(&format!("plan written to {}\n", out.display()));
    }
    text.push_str(if approved {
        "approved: run `cw apply PLAN_FILE` to execute it\n"
    } else {
        "not approved yet: review it, then `cw approve PLAN_FILE` and `cw apply PLAN_FILE`\n"
    });
    text.push_str(&format!("plan_hash {}\n", prepared.plan_hash()));
    text
}

fn title(item: &pal::inventory::InventoryItem) -> String {
    match (&item.title, item.year) {
        (Some(t), Some(y)) => format!("  {t} ({y})"),
        (Some(t), None) => format!("  {t}"),
        _ => String::new(),
    }
}
