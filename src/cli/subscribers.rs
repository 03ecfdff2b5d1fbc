//! `nashra subscribers import|export`: CSV in and out through the same operations as the
//! console's (`App::import_csv`, `App::export_csv`), with the import's notes in file order.

use std::io::Write;

use anyhow::{Context, bail};

use super::args::SubscriberAction;
use crate::{
    app::{Actor, App},
    config::Settings,
};

pub(super) async fn subscribers(
    settings: Settings,
    action: SubscriberAction,
) -> anyhow::Result<()> {
    let app = App::new(settings).await?;
    match action {
        SubscriberAction::Import { file, confirmed } => {
            let f = std::fs::File::open(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let label = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let r = app
                .import_csv(&Actor::cli(), std::io::BufReader::new(f), confirmed, &label)
                .await?;
            let unnamed = match r.unnamed {
                0 => String::new(),
                1 => "; 1 imported without a name".into(),
                n => format!("; {n} imported without a name"),
            };
            let unzoned = match r.unzoned {
                0 => String::new(),
                1 => "; 1 imported in the newsroom's time zone".into(),
                n => format!("; {n} imported in the newsroom's time zone"),
            };
            println!(
                "{} added, {} already known, {} rejected{unnamed}{unzoned}",
                r.added, r.known, r.rejected
            );
            // Both kinds of note in the file's order, so the editor can work down it.
            let mut notes: Vec<(u64, String)> = r
                .errors
                .iter()
                .map(|(line, why)| (*line, why.to_string()))
                .chain(r.names.iter().map(|(line, n)| (*line, n.to_string())))
                .chain(r.zones.iter().map(|(line, z)| (*line, z.to_string())))
                .collect();
            notes.sort_by_key(|(line, _)| *line);
            const SHOWN: usize = 50;
            for (line, note) in notes.iter().take(SHOWN) {
                eprintln!("line {line}: {note}");
            }
            let more = (r.rejected + r.unnamed + r.unzoned).saturating_sub(SHOWN as u64);
            if more > 0 {
                eprintln!("… and {more} more");
            }
            let rejected = match r.rejected {
                0 => None,
                1 => Some("1 row was not imported".to_owned()),
                n => Some(format!("{n} rows were not imported")),
            };
            if let Some(why) = r.stopped {
                bail!(
                    "the import stopped: {why} (the rows before it were imported{})",
                    rejected.map(|r| format!("; {r}")).unwrap_or_default()
                );
            }
            if let Some(rejected) = rejected {
                bail!(
                    "{rejected}: correct those lines and import the file again (readers already imported are left as they are)"
                );
            }
            Ok(())
        }
        SubscriberAction::Export => {
            use futures::StreamExt;
            let stream = app.export_csv(&Actor::cli()).await?;
            futures::pin_mut!(stream);
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            while let Some(chunk) = stream.next().await {
                out.write_all(&chunk?)?;
            }
            out.flush()?;
            Ok(())
        }
    }
}
