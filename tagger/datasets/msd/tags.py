"""Facts about the Million Song Dataset tag vocabularies and broken audio.

CALS_TAGS: the column order of the CALS `*_binaries.npy` files
(minzwon/semi-supervised-music-tagging-transformer, src/msd_config.py).
CLASSIC_TAGS: the classic Last.fm top-50 in `50tagList.txt` order with its
original capitalisation (jongpillee/music_dataset_split, MSD_split; the same
list as keunwoochoi/MSD_split_for_tagging). The two share 36 tags.
KNOWN_BROKEN_IDS: the 55 MSD ids whose audio is broken or too short in the
common 7digital copies (minzwon/sota-music-tagging-models skips them).
"""

from __future__ import annotations

CALS_TAGS = (
    "rock", "pop", "indie", "alternative", "electronic", "hip-hop", "metal",
    "jazz", "punk", "folk", "alternative rock", "indie rock", "dance",
    "hard rock", "00s", "soul", "hardcore", "80s", "country", "classic rock",
    "punk rock", "blues", "chillout", "experimental", "heavy metal",
    "death metal", "90s", "reggae", "progressive rock", "ambient", "acoustic",
    "beautiful", "british", "rnb", "funk", "metalcore", "mellow", "world",
    "guitar", "trance", "indie pop", "christian", "house", "spanish", "latin",
    "psychedelic", "electro", "piano", "70s", "progressive metal",
)

CLASSIC_TAGS = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists",
    "dance", "00s", "alternative rock", "jazz", "beautiful", "metal",
    "chillout", "male vocalists", "classic rock", "soul", "indie rock",
    "Mellow", "electronica", "80s", "folk", "90s", "chill", "instrumental",
    "punk", "oldies", "blues", "hard rock", "ambient", "acoustic",
    "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party",
    "country", "easy listening", "sexy", "catchy", "funk", "electro",
    "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad",
    "House", "happy",
)

KNOWN_BROKEN_IDS = frozenset((
    "TRAIISZ128F42684BB", "TRAONEQ128F42A8AB7", "TRADRNH128E0784511",
    "TRBGHEU128F92D778F", "TRCHYIF128F1464CE7", "TRCVDKQ128E0790C86",
    "TREWVFM128F146816E", "TREQRIV128F1468B08", "TREUVBN128F1468AC9",
    "TRDKNBI128F14682B0", "TRFWOAG128F14B12CB", "TRFIYAF128F14688A6",
    "TRGYAEZ128F14A473F", "TRIXPRK128F1468472", "TRAQKCW128F9352A52",
    "TRLAWQU128F1468AC8", "TRMSPLW128F14A544A", "TRLNGQT128F1468261",
    "TROTUWC128F1468AB4", "TRNDAXE128F934C50E", "TRNHIBI128EF35F57D",
    "TRMOREL128F1468AC4", "TRPNFAG128F146825F", "TRIXPOY128F14A46C7",
    "TROCQVE128F1468AC6", "TRPCXJI128F14688A8", "TRQKRKL128F1468AAE",
    "TRPKNDC128F145998B", "TRRUHEH128F1468AAD", "TRLUSKX128F14A4E50",
    "TRMIRQA128F92F11F1", "TRSRUXF128F1468784", "TRTNQKQ128F931C74D",
    "TRTTUYE128F4244068", "TRUQZKD128F1468243", "TRUINWL128F1468258",
    "TRVRHOY128F14680BC", "TRWVEYR128F1458A6F", "TRVLISA128F1468960",
    "TRYDUYU128F92F6BE0", "TRYOLFS128F9308346", "TRMVCVS128F1468256",
    "TRZSPHR128F1468AAC", "TRXBJBW128F92EBD96", "TRYPGJX128F1468479",
    "TRYNNNZ128F1468994", "TRVDOVF128F92DC7F3", "TRWUHZQ128F1451979",
    "TRXMAVV128F146825C", "TRYNMEX128F14A401D", "TREGWSL128F92C9D42",
    "TRJKZDA12903CFBA43", "TRBGJIZ128F92E42BC", "TRVWNOH128E0788B78",
    "TRCGBRK128F146A901",
))

# Sizes of the classic split: the first 201,680 ids of filtered_list_train.cP
# are train, the rest valid.
CLASSIC_TRAIN_COUNT = 201680
