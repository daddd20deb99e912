"""The Flink SQL peer: the same job on the engine a team would pick instead."""
