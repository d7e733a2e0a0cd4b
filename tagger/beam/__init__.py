"""Dataset builds as Apache Beam pipelines (DirectRunner here; Dataflow,
Flink or Spark at scale). Importing this package imports nothing of Beam:
`flags` is plain argparse; `build` imports Beam when it runs."""
