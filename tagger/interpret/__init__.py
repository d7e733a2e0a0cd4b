"""Looking inside trained taggers: SE excitations of the sample-level CNNs
(`excitations`), attention heat maps and tag-wise contribution maps of the
attention taggers (`attention_maps`, CLI `python -m tagger.interpret.attention`),
and their figures (`plots`)."""
