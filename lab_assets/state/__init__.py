"""The state tables' bookkeeping: what a refresh last saw of the sources, the change sets found
against it, the pending samples the flat table must rebuild, the build lock, and the checks every
writing step runs first."""
