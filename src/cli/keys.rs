//! `cloakline keys`: keyring management.

use super::*;

#[derive(Subcommand)]
pub(crate) enum KeysCommand {
    /// Add a new random 256-bit key to a keyring (created if missing, owner-only permissions).
    Generate {
        /// Id of the new key, as the policy will refer to it (A-Z a-z 0-9 . _ - :).
        #[arg(long)]
        id: String,
        #[command(flatten)]
        keyring: KeyringArg,
    },
}

pub(crate) fn run(command: KeysCommand) -> Result<()> {
    let KeysCommand::Generate { id, keyring } = command;
    let path = keyring.keyring.ok_or_else(|| {
        Error::Usage("name the keyring file with --keyring FILE (or CLOAKLINE_KEYRING)".into())
    })?;
    let fp = Keyring::generate_into_file(&path, &id)?;
    errln!("added key {id} (fingerprint {fp}) to {}", path.display());
    Ok(())
}
