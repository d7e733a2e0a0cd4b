"""Looking inside trained taggers: SE excitations of the sample-level CNNs
(`excitations`), attention heat maps and tag-wise contribution maps of the
attention taggers (`attention_maps`, command `python -m tagger.commands.attention`),
and their figures (`plots`)."""
