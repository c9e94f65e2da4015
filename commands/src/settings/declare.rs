//! How a setting is declared, once: its environment variable, flag, value name, help, real
//! default, whether it is a credential, its Lambda event key and its shape. The command line, the
//! `--help` defaults, the Lambda event keys and their type checks, secret scrubbing and the
//! documentation check all derive from these declarations; readers in [`super::RawSettings`] take
//! a declaration, never a name, so a command cannot read a setting it did not declare.

/// A setting's default, as code uses it and as `--help` and the docs show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Default {
    /// No value: the setting is optional (or required, as the command's reader says).
    Unset,
    /// This value, parsed by the same reader as a value from the environment.
    Value(&'static str),
    /// Computed when the command runs (`now`, `the source's`...): this says how.
    Derived(&'static str),
}

/// What a setting's value may look like, beyond its reader's own checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One line.
    Line,
    /// A boolean that the flag also takes bare (`--dry-run` means `--dry-run=1`).
    Switch,
    /// Several lines (one item per line): newlines and tabs are allowed.
    Lines,
    /// JSON, which may be pretty-printed on several lines; a Lambda event may give an object.
    Json,
}

/// One setting, declared once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The environment variable, which is also the setting's name everywhere.
    pub env: &'static str,
    /// The long flag, without `--`, when it is not the variable's name in kebab case.
    pub flag: Option<&'static str>,
    pub value_name: &'static str,
    pub help: &'static str,
    pub default: Default,
    /// A credential: never printed, scrubbed from every text and event.
    pub secret: bool,
    /// The key of a Lambda event that sets it (event keys win over the environment).
    pub event_key: Option<&'static str>,
    pub shape: Shape,
    /// Kept for compatibility, not shown in `--help`.
    pub hidden: bool,
}

impl Setting {
    pub const fn new(env: &'static str, value_name: &'static str, help: &'static str) -> Setting {
        Setting {
            env,
            flag: None,
            value_name,
            help,
            default: Default::Unset,
            secret: false,
            event_key: None,
            shape: Shape::Line,
            hidden: false,
        }
    }

    /// A credential (`user:pass` or a token, a key...).
    pub const fn credentials(env: &'static str, help: &'static str) -> Setting {
        Setting {
            secret: true,
            ..Setting::new(env, "CREDENTIALS", help)
        }
    }

    /// A boolean switch, off unless set.
    pub const fn switch(env: &'static str, help: &'static str) -> Setting {
        Setting {
            shape: Shape::Switch,
            default: Default::Value("0"),
            ..Setting::new(env, "BOOL", help)
        }
    }

    pub const fn default(self, value: &'static str) -> Setting {
        Setting {
            default: Default::Value(value),
            ..self
        }
    }

    pub const fn derived(self, how: &'static str) -> Setting {
        Setting {
            default: Default::Derived(how),
            ..self
        }
    }

    pub const fn flag(self, flag: &'static str) -> Setting {
        Setting {
            flag: Some(flag),
            ..self
        }
    }

    pub const fn event_key(self, key: &'static str) -> Setting {
        Setting {
            event_key: Some(key),
            ..self
        }
    }

    pub const fn secret(self) -> Setting {
        Setting {
            secret: true,
            ..self
        }
    }

    pub const fn shape(self, shape: Shape) -> Setting {
        Setting { shape, ..self }
    }

    pub const fn hidden(self) -> Setting {
        Setting {
            hidden: true,
            ..self
        }
    }

    /// The long flag, without `--`.
    pub fn long_flag(&self) -> String {
        match self.flag {
            Some(flag) => flag.to_string(),
            None => self.env.to_ascii_lowercase().replace('_', "-"),
        }
    }

    /// The default as `--help` and the docs show it: the value in backticks, or how it is derived,
    /// or `none`.
    pub fn default_text(&self) -> String {
        match self.default {
            Default::Unset => "none".to_string(),
            Default::Value(value) => format!("`{value}`"),
            Default::Derived(how) => how.to_string(),
        }
    }

    /// Whether its value may span several lines.
    pub fn multi_line(&self) -> bool {
        matches!(self.shape, Shape::Lines | Shape::Json)
    }
}
