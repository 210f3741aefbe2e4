//! Saving settings and the agent list: validated first, nothing written when a field is invalid.

use super::AppCore;
use crate::error::{AppError, AppResult};
use coordinator::config::{AgentSettings, ConfigError, Settings};
use std::path::Path;

impl AppCore {
    /// Everything `save_settings` checks before writing: the engine's validation plus what the window must
    /// not be allowed to choose (a log folder that would let the window read system files).
    pub fn check(&self, settings: &Settings) -> AppResult<()> {
        let mut s = settings.clone();
        s.add_builtin_providers();
        s.validate(&self.settings_path).map_err(AppError::from_settings)?;
        if let Some(dir) = &s.log_dir {
            super::logs::check_log_root(dir).map_err(|hint| {
                AppError::from_settings(ConfigError::invalid(
                    &self.settings_path,
                    "log_dir",
                    format!("{:?}", dir.display().to_string()),
                    &hint,
                ))
            })?;
        }
        Ok(())
    }

    /// Validate and save the user's settings; nothing is written when a field is invalid. In demo mode they
    /// are the demo's (its own file); leaving the demo writes only that to the real settings.
    /// Returns whether demo mode was switched (the caller restarts the engine).
    pub async fn save_settings(&self, new: Settings) -> AppResult<bool> {
        self.check(&new)?;
        let mut inner = self.inner.lock().await;
        let in_demo = inner.demo.is_some();
        if in_demo && !new.demo {
            let mut real = inner.saved.clone();
            real.demo = false;
            real.save(&self.settings_path).map_err(AppError::from_settings)?;
            inner.saved = real;
            return Ok(true);
        }
        let mut new = new;
        new.add_builtin_providers();
        // A field the user changed wins over the server's dynamic configuration from now on; saving other
        // settings (or "Try the demo") pins nothing, so the server's values keep applying.
        let before = Self::effective(&inner);
        let changed = [
            (
                "polling_interval_secs",
                new.polling_interval_secs != before.polling_interval_secs,
            ),
            ("max_concurrent", new.max_concurrent != before.max_concurrent),
        ];
        for (f, _) in changed.iter().filter(|(_, c)| *c) {
            if !new.pinned.iter().any(|p| p == f) {
                new.pinned.push(f.to_string());
            }
        }
        if in_demo {
            // The demo's server and log folder are this run's, whatever the window sent.
            new.server = before.server.clone();
            new.log_dir = before.log_dir.clone();
            super::demo::save(&self.settings_path, &new).map_err(AppError::from_settings)?;
            inner.demo_settings = Some(new);
            self.apply(&inner).await;
            return Ok(false);
        }
        new.save(&self.settings_path).map_err(AppError::from_settings)?;
        let demo_changed = new.demo;
        inner.saved = new;
        self.apply(&inner).await;
        Ok(demo_changed)
    }

    /// Write the agents' holder: the demo's file in demo mode, else settings.json.
    fn save_agents(&self, s: &Settings, demo: bool) -> AppResult<()> {
        match demo {
            true => super::demo::save(&self.settings_path, s)?,
            false => s.save(&self.settings_path)?,
        }
        Ok(())
    }

    /// The settings that hold the agents: the demo's or the saved ones. True for the demo.
    fn agents_mut(inner: &mut super::Inner) -> (&mut Settings, bool) {
        match inner.demo_settings.as_mut() {
            Some(d) => (d, true),
            None => (&mut inner.saved, false),
        }
    }

    pub async fn set_agent(&self, agent_id: &str, enabled: bool, provider: Option<String>) -> AppResult<()> {
        let mut inner = self.inner.lock().await;
        let path = self.settings_path.clone();
        let (s, demo) = Self::agents_mut(&mut inner);
        let mut next = s.clone();
        let a = next
            .agents
            .get_mut(agent_id)
            .ok_or_else(|| AppError::Message(format!("unknown agent {agent_id}")))?;
        a.enabled = enabled;
        a.provider = provider.filter(|p| !p.is_empty());
        next.validate(&path)?;
        self.save_agents(&next, demo)?;
        *s = next;
        self.apply(&inner).await;
        Ok(())
    }

    pub async fn add_agent(&self, agent_id: &str) -> AppResult<()> {
        coordinator::paths::validate_id(agent_id)
            .map_err(|e| AppError::Message(format!("agent id {agent_id:?}: {e}")))?;
        let mut inner = self.inner.lock().await;
        let (s, demo) = Self::agents_mut(&mut inner);
        s.agents
            .entry(agent_id.to_string())
            .or_insert_with(AgentSettings::default);
        self.save_agents(s, demo)?;
        self.apply(&inner).await;
        Ok(())
    }

    pub async fn remove_agent(&self, agent_id: &str) -> AppResult<()> {
        let mut inner = self.inner.lock().await;
        let (s, demo) = Self::agents_mut(&mut inner);
        s.agents.remove(agent_id);
        self.save_agents(s, demo)?;
        self.apply(&inner).await;
        Ok(())
    }

    /// Import the Python coordinator's YAML (or AI Agent PM's export) into the platform store and settings.
    /// `overwrite`: the file's passkeys and token replace different stored ones (a re-export after a rotation).
    pub async fn import(
        &self,
        path: &Path,
        scrub: bool,
        overwrite: bool,
    ) -> AppResult<coordinator::import::ImportReport> {
        let store = self.platform_store.clone();
        let (yaml, settings_path) = (path.to_path_buf(), self.settings_path.clone());
        let report = tokio::task::spawn_blocking(move || {
            coordinator::import::import_yaml(
                &yaml,
                store.as_ref(),
                &settings_path,
                &coordinator::import::ImportOptions {
                    scrub,
                    overwrite,
                    keep_backup: false,
                },
            )
        })
        .await?
        .map_err(|e| AppError::Message(e.to_string()))?;
        let mut inner = self.inner.lock().await;
        inner.token_present = None; // the import may have stored one
        inner.saved = Settings::load(&self.settings_path)?;
        self.apply(&inner).await;
        if let Some(e) = &inner.engine {
            e.secrets_changed().await;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::core;
    use super::*;

    #[tokio::test]
    async fn invalid_settings_are_not_saved_and_name_the_field() {
        let d = tempfile::tempdir().unwrap();
        let c = core(d.path());
        let mut s = c.view().await.saved;
        s.polling_interval_secs = 0;
        let e = c.save_settings(s.clone()).await.unwrap_err();
        assert_eq!(e.field_name(), Some("polling_interval_secs"));
        assert!(
            !d.path().join("settings.json").exists(),
            "invalid settings reached disk"
        );
        s.polling_interval_secs = 7;
        c.save_settings(s).await.unwrap();
        assert_eq!(
            Settings::load(&d.path().join("settings.json"))
                .unwrap()
                .polling_interval_secs,
            7
        );
        assert!(!c.first_run());
    }

    #[tokio::test]
    async fn a_system_folder_as_log_dir_is_a_field_error_and_nothing_is_saved() {
        let d = tempfile::tempdir().unwrap();
        let c = core(d.path());
        for bad in ["/", "/etc", "/usr/", "/var/../etc"] {
            let mut s = c.view().await.saved;
            s.log_dir = Some(bad.into());
            let e = c.save_settings(s).await.unwrap_err();
            assert_eq!(e.field_name(), Some("log_dir"), "{bad}: {e}");
            assert!(
                e.to_string().contains("is not valid") && e.to_string().contains("system folder"),
                "{bad}: {e}"
            );
            assert!(!d.path().join("settings.json").exists(), "{bad} reached disk");
        }
        // A symlink to a system folder is judged by where it leads.
        let link = d.path().join("logs-link");
        std::os::unix::fs::symlink("/etc", &link).unwrap();
        let mut s = c.view().await.saved;
        s.log_dir = Some(link);
        assert_eq!(
            c.save_settings(s.clone()).await.unwrap_err().field_name(),
            Some("log_dir")
        );
        s.log_dir = Some(d.path().join("logs"));
        c.save_settings(s).await.unwrap();
    }

    #[tokio::test]
    async fn only_a_changed_field_is_pinned_against_the_servers_configuration() {
        let d = tempfile::tempdir().unwrap();
        let c = core(d.path());
        let mut s = c.view().await.saved;
        s.debug = !s.debug;
        c.save_settings(s).await.unwrap();
        assert!(
            c.view().await.saved.pinned.is_empty(),
            "saving another field pinned the server's values away"
        );
        let mut s = c.view().await.saved;
        s.max_concurrent += 1;
        c.save_settings(s).await.unwrap();
        assert_eq!(c.view().await.saved.pinned, vec!["max_concurrent".to_string()]);
    }

    #[tokio::test]
    async fn import_moves_passkeys_lists_agents_and_scrubs_on_request() {
        let d = tempfile::tempdir().unwrap();
        let c = core(d.path());
        assert!(c.first_run());
        let yaml = d.path().join("coordinator.yaml");
        std::fs::write(
            &yaml,
            "agents:\n  agt_a:\n    passkey: secret-aaaa-1111\n  agt_b:\n    passkey: secret-bbbb-2222\n",
        )
        .unwrap();
        let r = c.import(&yaml, false, false).await.unwrap();
        assert_eq!(r.moved, vec!["agt_a".to_string(), "agt_b".to_string()]);
        assert!(r.backup.is_none());
        let view = c.view().await;
        assert!(view.saved.agents.contains_key("agt_a") && view.saved.agents.contains_key("agt_b"));
        assert!(!view.first_run);
        assert_eq!(
            c.platform_store.get("agent:agt_b").unwrap().as_deref(),
            Some("secret-bbbb-2222")
        );
        let report_json = serde_json::to_string(&r).unwrap();
        assert!(
            !report_json.contains("secret-"),
            "the import report carries a passkey: {report_json}"
        );
        assert!(!std::fs::read_to_string(d.path().join("settings.json"))
            .unwrap()
            .contains("secret-"));
        // Second run with scrub: nothing new moved, the file is blanked, and no plaintext copy is kept anywhere.
        let r = c.import(&yaml, true, false).await.unwrap();
        assert_eq!(r.unchanged.len(), 2);
        assert!(!std::fs::read_to_string(&yaml).unwrap().contains("secret-"));
        assert!(r.backup.is_none());
        for f in std::fs::read_dir(d.path()).unwrap() {
            let f = f.unwrap().path();
            assert!(
                f.is_dir() || !std::fs::read_to_string(&f).unwrap_or_default().contains("secret-"),
                "{} holds a passkey",
                f.display()
            );
        }
        // A re-export with a rotated token: kept by default (a conflict), replaced when the user asks.
        std::fs::write(
            &yaml,
            "coordinator_token: tok-rotated-new-9999\nagents:\n  agt_a:\n    passkey: secret-aaaa-1111\n",
        )
        .unwrap();
        c.platform_store
            .set(coordinator::secrets::TOKEN_ACCOUNT, "tok-old-stored-1111")
            .unwrap();
        let r = c.import(&yaml, false, false).await.unwrap();
        assert_eq!(r.token.as_deref(), Some("conflict"));
        assert_eq!(
            c.platform_store
                .get(coordinator::secrets::TOKEN_ACCOUNT)
                .unwrap()
                .as_deref(),
            Some("tok-old-stored-1111")
        );
        c.import(&yaml, false, true).await.unwrap();
        assert_eq!(
            c.platform_store
                .get(coordinator::secrets::TOKEN_ACCOUNT)
                .unwrap()
                .as_deref(),
            Some("tok-rotated-new-9999")
        );
        // A missing file is an error in words, not a panic.
        assert!(c
            .import(&d.path().join("nope.yaml"), false, false)
            .await
            .unwrap_err()
            .to_string()
            .contains("nope.yaml"));
    }
}
