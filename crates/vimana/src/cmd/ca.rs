//! `vimana ca export`: the local CA certificate that signs the gateway's
//! per-hostname certificates, for clients to trust.

use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::home::Home;

pub fn export(home: &Home) -> Result<ExitCode> {
    home.ensure()?;
    let ca = vimana_gateway::LocalCa::load_or_create(&home.ca_dir()).with_context(|| {
        format!(
            "cannot load or create the local CA in {}",
            home.ca_dir().display()
        )
    })?;
    print!("{}", ca.ca_pem());
    Ok(ExitCode::SUCCESS)
}
