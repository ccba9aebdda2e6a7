"""The asset checks: one integrity property each, declared as specs and evaluated by the step that
builds the table (or over the live sources by the audit), offenders named in the result."""
