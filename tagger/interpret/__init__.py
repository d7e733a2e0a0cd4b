"""Looking inside trained taggers: SE excitations of the sample-level CNNs
(`excitations` computes them; `excitation_run` extracts, saves and plots
them), attention heat maps and tag-wise contribution maps of the attention
taggers (`attention_maps`, command `python -m tagger.commands.attention`),
and their figures (`plots`: they draw what the others compute)."""
