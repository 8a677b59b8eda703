"""Where the corpus comes from: Debian packages of real recorded speech and noise, and their splits.

Pipeline step 1 of 5 (corpus -> dataset -> train -> evaluate -> ship): corpus.

Splits are by *speaker* and by *noise source*, and the out-of-domain split (``ood``)
goes further: its voices, its noises and the packages they come from (their
recording chains) are never used for training, validation or model selection.

- ``train`` / ``validation``: utterances of the training voices (8 % held out).
- ``valvoice``: whole voices and noise sources kept out of training, for model selection.
- ``test``: the original split (two Asterisk voices, six noise sources): unseen voices,
  but the same recording chain as the Asterisk training voices.
- ``ood``: read Russian sentences (Festival's msu_ru_nsh voice database, male), Mandarin
  syllables (gcin-voice) and noises from lincity-ng, frozen-bubble and extremetuxracer:
  packages that nothing else touches.
- ``expressive``: hedgewars' acted, shouted voice packs (unseen package too), kept apart.

None of the packages DATA.md reserves for independent evaluation is listed here.
"""
from __future__ import annotations

from dataclasses import dataclass

AUDIO_SUFFIXES = {".wav", ".ogg", ".opus", ".flac", ".g722", ".mp3", ".oga", ".aif", ".aiff", ".gsm"}


@dataclass(frozen=True)
class VoiceSet:
    """Speech files of one package; each sub-folder matched by ``speakers`` is one voice."""
    package: str
    folder: str                    # inside the unpacked package
    speakers: dict[str, str]       # sub-folder ("" = the folder itself), or the {speaker} in pattern -> split
    prefix: str                    # group name = prefix + sub-folder
    sex: str = "unknown"           # "unknown": estimated from the voice's pitch
    pattern: str = "*"             # may hold {speaker}: one voice per file-name pattern under folder
    min_seconds: float = 0.3
    max_clips: int = 0             # 0: all


@dataclass(frozen=True)
class NoiseSet:
    """Noise files of one package matching ``pattern``: one source per file or one per set."""
    package: str
    pattern: str
    family: str
    split: str
    per_file: bool = False         # each file its own noise source (many distinct recordings)


_AST = "usr/share/asterisk/sounds"
_KLETTRES_TRAIN = ["ar", "cs", "da", "de", "en", "en_GB", "es", "fr", "he", "it", "lt", "ml", "nb", "nds",
                   "nl", "pt_BR", "tn"]  # hu: every clip fails the hiss check; id, nn: no audio
_KLETTRES_VALIDATION = ["ru", "uk"]
# ktuberling: one reader per language (sr variants are one voice: only sr is used)
_TUBERLING_TRAIN = ["ca", "da", "de", "el", "en", "fr", "lt", "nn", "ru", "uk", "wa", "es", "fi", "ga", "it",
                    "nds", "nl", "pt", "ro", "sv"]
_TUBERLING_VALIDATION = ["gl", "sl", "sr"]
_TUXPAINT_TRAIN = ["fr", "ru", "ro", "ca", "bg", "es", "be", "el"]
_TUXPAINT_VALIDATION = ["da", "lt"]
# game voice packs: shouted, acted, some processed; a stress test of their own ("expressive"),
# not a stand-in for a user's speech
_HEDGEWARS_OOD = ["British", "Classic", "Default", "Default_es", "Default_pl", "Default_ru", "Default_uk",
                  "HillBilly", "Mobster", "Pirate", "Russian", "Surfer"]  # Robot and Singer are processed

SPEECH_SETS: list[VoiceSet] = [
    VoiceSet("asterisk-core-sounds-en-g722", _AST, {"en_US_f_Allison": "train"}, "ast_", "female", "*.g722", 0.5),
    VoiceSet("asterisk-core-sounds-es-g722", _AST, {"es_MX_f_Allison": "train"}, "ast_", "female", "*.g722", 0.5),
    VoiceSet("asterisk-core-sounds-ru-g722", _AST, {"ru_RU_f_IvrvoiceRU": "train"}, "ast_", "female", "*.g722", 0.5),
    VoiceSet("asterisk-core-sounds-fr-g722", _AST, {"fr_CA_f_June": "test"}, "ast_", "female", "*.g722", 0.5),
    VoiceSet("asterisk-core-sounds-it-g722", _AST, {"it_IT_m_Carlo": "test"}, "ast_", "male", "*.g722", 0.5),
    # telephone-band voices (8 kHz): band-limited training examples, 150 prompts each
    VoiceSet("asterisk-prompt-it-menardi-wav", _AST, {"it_IT_f_Menardi": "train"}, "ast8k_", "female", "*.wav",
             0.5, 150),
    VoiceSet("asterisk-prompt-fr-armelle", _AST, {"fr": "train"}, "ast8k_armelle_", "female", "*.gsm", 0.5, 150),
    VoiceSet("asterisk-prompt-es-co", _AST, {"es": "train"}, "ast8k_co_", "unknown", "*.gsm", 0.5, 150),
    VoiceSet("klettres-data", "usr/share/klettres",
             {**{k: "train" for k in _KLETTRES_TRAIN}, **{k: "valvoice" for k in _KLETTRES_VALIDATION}},
             "klettres_", "unknown", "**/*"),
    VoiceSet("ktuberling-data", "usr/share/ktuberling/sounds",
             {**{k: "train" for k in _TUBERLING_TRAIN}, **{k: "valvoice" for k in _TUBERLING_VALIDATION}},
             "tuberling_", "unknown", "*"),
    # Tux Paint's spoken stamp descriptions: read sentences, one volunteer voice per language
    VoiceSet("tuxpaint-stamps-default", "usr/share/tuxpaint/stamps",
             {**{k: "train" for k in _TUXPAINT_TRAIN}, **{k: "valvoice" for k in _TUXPAINT_VALIDATION}},
             "tuxpaint_", "unknown", "**/*_desc_{speaker}.ogg", 0.5, 250),
    # out of domain: packages nothing else touches
    VoiceSet("festvox-ru", "usr/share/festival/voices/russian/msu_ru_nsh_clunits/wav", {"": "ood"},
             "festvox_ru_nsh", "male", "*.wav", 0.5),
    VoiceSet("gcin-voice", "usr/share/gcin-voice/ogg", {"": "ood"}, "gcin_zh", "unknown", "*/*.ogg", 0.2, 600),
    VoiceSet("hedgewars-data", "usr/share/games/hedgewars/Data/Sounds/voices",
             {k: "expressive" for k in _HEDGEWARS_OOD}, "hedgewars_", "unknown", "*.ogg"),
]

# OpenSFX entries by index (the catalogue's order): trains, road vehicles, planes, ships; machines;
# wind; crowd; animals; impacts and the till. Left out: jingles, beeps, and the cartoon "Toyland" mixes.
OPENSFX_FOLDER = "opensfx"   # inside the unpacked package, written by training.recordings.catalogues
OPENSFX_CATALOGUE = "usr/share/games/openttd/baseset/opensfx/opensfx.cat"
_OPENSFX = [
    ("traffic_engines", "train", (4, 5, 6, 7, 8, 9, 10, 14, 24, 25, 26, 27, 28, 35, 61, 65, 69, 71)),
    ("traffic_engines", "valvoice", (59,)),
    ("machines", "train", (3, 11, 12, 13, 33, 39, 56)),
    ("machines", "valvoice", (40,)),
    ("wind_rain_water", "train", (52, 57)),
    ("crowd", "train", (29, 30)),
    ("nature", "train", (36, 37, 38, 66, 67, 68, 72)),
    ("household", "train", (15, 16, 17, 19, 20, 54, 55)),
]
# Festival's diphone voices keep their recordings as LPC-coded diphones in one .group file, written out
# as utterances (training.recordings.festival_diphones): (package, group under _FESTIVAL, voice, sex)
_FESTIVAL = "usr/share/festival/voices"
DIPHONE_FOLDER = "diphone_utterances"  # inside the unpacked package
_DIPHONE_VOICES = [
    ("festvox-czech-machac", "czech/czech_machac/group/machac.group", "cs_machac", "male"),
    ("festvox-czech-ph", "czech/czech_ph/group/ph.group", "cs_ph", "male"),
    ("festvox-czech-dita", "czech/czech_dita/group/dita.group", "cs_dita", "female"),
    ("festvox-czech-krb", "czech/czech_krb/group/krb.group", "cs_krb", "unknown"),  # a boy's voice
    ("festvox-hi-nsk", "hindi/hindi_NSK_diphone/group/NSKlpc.group", "hi_nsk", "male"),  # mr-nsk, te-nsk: the same
    ("festvox-itapc16k", "italian/pc_diphone/group/pc_diphone.group", "it_pc", "male"),
    ("festvox-italp16k", "italian/lp_diphone/group/lp_diphone.group", "it_lp", "female"),
    ("festvox-kallpc16k", "english/kal_diphone/group/kallpc16k.group", "en_kal", "male"),
    ("festvox-kdlpc16k", "english/ked_diphone/group/kedlpc16k.group", "en_ked", "male"),
    ("festvox-suopuhe-mv", "finnish/hy_fi_mv_diphone/group/mvlpc.group", "fi_mv", "male"),
    ("festvox-suopuhe-lj", "finnish/suo_fi_lj_diphone/group/ljlpc.group", "fi_lj", "female"),
]
# package -> (kind, the file holding many recordings, folder to write them into)
CATALOGUES = {"openttd-opensfx": ("openttd", OPENSFX_CATALOGUE, OPENSFX_FOLDER),
              **{package: ("festival-diphones", f"{_FESTIVAL}/{group}", DIPHONE_FOLDER)
                 for package, group, _, _ in _DIPHONE_VOICES}}
# after every other voice set, so that the draws holding out other voices' clips stay as they were
SPEECH_SETS += [VoiceSet(package, DIPHONE_FOLDER, {"": "train"}, f"festvox_{voice}", sex, "*.wav", 0.5)
                for package, _, voice, sex in _DIPHONE_VOICES]
DIPHONE_GROUPS = frozenset(f"festvox_{voice}" for _, _, voice, _ in _DIPHONE_VOICES)  # their voices' groups
_WES = "usr/share/games/wesnoth/1.16/data/core/sounds"
_LMMS = "usr/share/lmms/samples"
_MOH = "usr/share/asterisk/moh"
_STUX = "usr/share/games/supertux2/sounds"
_STUX_MUSIC = "usr/share/games/supertux2/music"
_LINCITY = "usr/share/games/lincity-ng/sounds"
_S3D = "usr/share/games/scorched3d/data/globalmods"   # 11 kHz recordings: nothing above 5.5 kHz
_FLARE = "usr/share/games/flare/mods"
_BTANKS = "usr/share/games/btanks/data/sounds"
_WIDELANDS = "usr/share/games/widelands/data/sound"
_S3D_MISC = "data/wav/misc"
_FLARE_ENV = "soundfx/environment"
# (source, package, file, family): game ambiences recorded from life (licences in each package's copyright)
_AMBIENCES = [
    ("s3d_cheering", "scorched3d-data", f"{_S3D}/apoc/{_S3D_MISC}/cheeringloop.wav", "crowd"),
    ("s3d_city", "scorched3d-data", f"{_S3D}/apoc/{_S3D_MISC}/citysounds.wav", "crowd"),
    ("s3d_birds1", "scorched3d-data", f"{_S3D}/none/{_S3D_MISC}/birds1.wav", "nature"),
    ("s3d_birds2", "scorched3d-data", f"{_S3D}/none/{_S3D_MISC}/birds2.wav", "nature"),
    ("s3d_frogs", "scorched3d-data", f"{_S3D}/none/{_S3D_MISC}/frogs.wav", "nature"),
    ("s3d_ocean", "scorched3d-data", f"{_S3D}/none/{_S3D_MISC}/oceanwaves.wav", "wind_rain_water"),
    ("s3d_rain", "scorched3d-data", f"{_S3D}/none/{_S3D_MISC}/rain.wav", "wind_rain_water"),
    ("s3d_factory", "scorched3d-data", f"{_S3D}/apoc/{_S3D_MISC}/factoryloop1.wav", "machines"),
    ("s3d_cessna", "scorched3d-data", f"{_S3D}/apoc/{_S3D_MISC}/cessna.wav", "traffic_engines"),
    ("s3d_helicopter", "scorched3d-data", f"{_S3D}/apoc/{_S3D_MISC}/helicopter.wav", "traffic_engines"),
    ("s3d_jet", "scorched3d-data", f"{_S3D}/none/{_S3D_MISC}/jet.wav", "traffic_engines"),
    ("flare_rain", "flare-game", f"{_FLARE}/empyrean_campaign/{_FLARE_ENV}/rain.ogg", "wind_rain_water"),
    ("flare_wind", "flare-game", f"{_FLARE}/fantasycore/{_FLARE_ENV}/wind_loop.ogg", "wind_rain_water"),
    ("flare_cave_wind", "flare-game", f"{_FLARE}/fantasycore/{_FLARE_ENV}/cave_wind_loop.ogg", "wind_rain_water"),
    ("flare_droplets", "flare-game", f"{_FLARE}/fantasycore/{_FLARE_ENV}/cave_droplets_loop.ogg", "wind_rain_water"),
    ("flare_river", "flare-game", f"{_FLARE}/fantasycore/{_FLARE_ENV}/river_loop.ogg", "wind_rain_water"),
    ("flare_birds", "flare-game", f"{_FLARE}/fantasycore/{_FLARE_ENV}/bird_twitter_loop.ogg", "nature"),
    ("flare_owl", "flare-game", f"{_FLARE}/fantasycore/{_FLARE_ENV}/forest_owl_loop.ogg", "nature"),
    ("flare_raven", "flare-game", f"{_FLARE}/fantasycore/{_FLARE_ENV}/raven_loop.ogg", "nature"),
    ("flare_anvil", "flare-game", f"{_FLARE}/fantasycore/{_FLARE_ENV}/anvil_loop.ogg", "machines"),
    ("btanks_city", "btanks-data", f"{_BTANKS}/ambient/city.ogg", "traffic_engines"),
    ("btanks_country", "btanks-data", f"{_BTANKS}/ambient/country.ogg", "nature"),
    ("btanks_forest", "btanks-data", f"{_BTANKS}/ambient/forest.ogg", "nature"),
    ("btanks_swamp", "btanks-data", f"{_BTANKS}/ambient/swamp.ogg", "nature"),
    ("btanks_helicopter", "btanks-data", f"{_BTANKS}/helicopter.ogg", "traffic_engines"),
    ("btanks_train", "btanks-data", f"{_BTANKS}/train.ogg", "traffic_engines"),
]

NOISE_SETS: dict[str, NoiseSet] = {
    # training
    "lmms_drums": NoiseSet("lmms-common", f"{_LMMS}/drums/*", "percussion", "train", True),
    "lmms_basses": NoiseSet("lmms-common", f"{_LMMS}/basses/*", "music", "train"),
    "lmms_instruments": NoiseSet("lmms-common", f"{_LMMS}/instruments/*", "music", "train", True),
    "lmms_effects": NoiseSet("lmms-common", f"{_LMMS}/effects/*", "household", "train", True),
    "lmms_misc": NoiseSet("lmms-common", f"{_LMMS}/misc/*", "household", "train", True),
    "lmms_shapes": NoiseSet("lmms-common", f"{_LMMS}/shapes/*", "music", "train"),
    "lmms_stringsnpads": NoiseSet("lmms-common", f"{_LMMS}/stringsnpads/*", "music", "train", True),
    "lmms_beats": NoiseSet("lmms-common", f"{_LMMS}/beats/*", "music", "train", True),
    "moh_cold_day": NoiseSet("asterisk-moh-opsound-g722", f"{_MOH}/macroform-cold_day.g722", "music", "train"),
    "moh_robot_dity": NoiseSet("asterisk-moh-opsound-g722", f"{_MOH}/macroform-robot_dity.g722", "music", "train"),
    "wesnoth_birds": NoiseSet("wesnoth-1.16-data", f"{_WES}/ambient/birds*.ogg", "nature", "train"),
    "wesnoth_wardrums": NoiseSet("wesnoth-1.16-data", f"{_WES}/ambient/wardrums.ogg", "percussion", "train"),
    "wesnoth_sfx": NoiseSet("wesnoth-1.16-data", f"{_WES}/*.ogg", "household", "train", True),
    "supertux_rain": NoiseSet("supertux-data", f"{_STUX}/rain.wav", "wind_rain_water", "train"),
    "supertux_waterfall": NoiseSet("supertux-data", f"{_STUX}/waterfall.wav", "wind_rain_water", "train"),
    "supertux_fire": NoiseSet("supertux-data", f"{_STUX}/f*.wav", "household", "train", True),
    "supertux_ticking": NoiseSet("supertux-data", f"{_STUX}/ticking.wav", "household", "train"),
    "supertux_thunder": NoiseSet("supertux-data", f"{_STUX}/thunder.wav", "wind_rain_water", "train"),
    "supertux_sfx": NoiseSet("supertux-data", f"{_STUX}/[b-e]*.wav", "household", "train", True),
    "supertux_music": NoiseSet("supertux-data", f"{_STUX_MUSIC}/*/*.ogg", "music", "train", True),
    "freeciv_sfx": NoiseSet("freeciv-data", "usr/share/games/freeciv/stdsounds/*.ogg", "machines", "train", True),
    "naev_sfx": NoiseSet("naev-data", "usr/share/naev/dat/snd/sounds/*", "traffic_engines", "train", True),
    "naev_ambient": NoiseSet("naev-data", "usr/share/naev/dat/snd/music/[ao]*.ogg", "music", "train", True),
    # OpenTTD's OpenSFX: real recordings (freesound.org, CC-BY 3.0 / CC0), split out of its catalogue
    **{f"opensfx_{index:02d}": NoiseSet("openttd-opensfx", f"{OPENSFX_FOLDER}/{index:02d}.wav", family, split)
       for family, split, indices in _OPENSFX for index in indices},
    # ambiences and machines for the thin families (crowd, wind/rain/water, nature): one source per file
    **{name: NoiseSet(package, path, family, "train") for name, package, path, family in _AMBIENCES},
    # the same kinds as one source per set (many short takes of one recording chain)
    "widelands_birds": NoiseSet("widelands-data", f"{_WIDELANDS}/animals/bird*.ogg", "nature", "train"),
    "widelands_beasts": NoiseSet("widelands-data", f"{_WIDELANDS}/animals/[cmsw][oot]*_0*.ogg", "nature",
                                 "train"),  # coyote, moose, stag, wolf
    "widelands_tavern": NoiseSet("widelands-data", f"{_WIDELANDS}/*/taverns/*.ogg", "crowd", "train"),
    "widelands_saws": NoiseSet("widelands-data", f"{_WIDELANDS}/atlanteans/saw/*.ogg", "machines", "train"),
    "widelands_stone": NoiseSet("widelands-data", f"{_WIDELANDS}/atlanteans/cutting/*.ogg", "machines", "train"),
    "widelands_smiths": NoiseSet("widelands-data", f"{_WIDELANDS}/smiths/*.ogg", "machines", "train"),
    "widelands_mill": NoiseSet("widelands-data", f"{_WIDELANDS}/mill/*.ogg", "machines", "train"),
    # validation sources (model selection, never trained on)
    "plee_rain": NoiseSet("plee-the-bear-data", "usr/share/games/plee-the-bear/sound/weather/rain.ogg",
                          "wind_rain_water", "valvoice"),
    "moh_simplicity": NoiseSet("asterisk-moh-opsound-g722", f"{_MOH}/macroform-the_simplicity.g722", "music",
                               "valvoice"),
    "wesnoth_morning": NoiseSet("wesnoth-1.16-data", f"{_WES}/ambient/morning.ogg", "nature", "valvoice"),
    "lmms_latin": NoiseSet("lmms-common", f"{_LMMS}/latin/*", "percussion", "valvoice"),
    "supertux_lava": NoiseSet("supertux-data", f"{_STUX}/lava.wav", "household", "valvoice"),
    # the original test split
    "moh_morning_coffee": NoiseSet("asterisk-moh-opsound-g722", f"{_MOH}/manolo_camp-morning_coffee.g722",
                                   "music", "test"),
    "moh_system": NoiseSet("asterisk-moh-opsound-g722", f"{_MOH}/reno_project-system.g722", "music", "test"),
    "wesnoth_campfire": NoiseSet("wesnoth-1.16-data", f"{_WES}/ambient/campfire.ogg", "nature", "test"),
    "wesnoth_ship": NoiseSet("wesnoth-1.16-data", f"{_WES}/ambient/ship.ogg", "wind_rain_water", "test"),
    "wesnoth_night": NoiseSet("wesnoth-1.16-data", f"{_WES}/ambient/night.ogg", "nature", "test"),
    "tux_crowd": NoiseSet("tuxfootball", "usr/share/games/tuxfootball/sound/crowd*.wav", "crowd", "test"),
    # out of domain: packages used nowhere else
    "lincity_traffic": NoiseSet("lincity-ng-data", f"{_LINCITY}/Trafic*.wav", "traffic_engines", "ood"),
    "lincity_industry": NoiseSet("lincity-ng-data", f"{_LINCITY}/Industry*.wav", "machines", "ood"),
    "lincity_train": NoiseSet("lincity-ng-data", f"{_LINCITY}/RailTrain*.wav", "traffic_engines", "ood"),
    "lincity_water": NoiseSet("lincity-ng-data", f"{_LINCITY}/Water*.wav", "wind_rain_water", "ood"),
    "lincity_windmill": NoiseSet("lincity-ng-data", f"{_LINCITY}/WindMill*.wav", "wind_rain_water", "ood"),
    "lincity_market": NoiseSet("lincity-ng-data", f"{_LINCITY}/Market*.wav", "crowd", "ood"),
    "lincity_sports": NoiseSet("lincity-ng-data", f"{_LINCITY}/SportsCroud*.wav", "crowd", "ood"),
    "lincity_residential": NoiseSet("lincity-ng-data", f"{_LINCITY}/Residential*.wav", "household", "ood"),
    "lincity_farm": NoiseSet("lincity-ng-data", f"{_LINCITY}/Farm*.wav", "nature", "ood"),
    "frozen_applause": NoiseSet("frozen-bubble-data", "usr/share/games/frozen-bubble/snd/applause.ogg", "crowd",
                                "ood"),
    "frozen_typewriter": NoiseSet("frozen-bubble-data", "usr/share/games/frozen-bubble/snd/typewriter.ogg",
                                  "household", "ood"),
    "frozen_music": NoiseSet("frozen-bubble-data", "usr/share/games/frozen-bubble/snd/frozen-mainzik-*.ogg",
                             "music", "ood"),
    "tuxracer_slides": NoiseSet("extremetuxracer-data", "usr/share/games/etr/sounds/*_slide.wav", "wind_rain_water",
                                "ood"),
}


def packages_needed() -> set[str]:
    """Every package the corpus fetches."""
    return {v.package for v in SPEECH_SETS} | {n.package for n in NOISE_SETS.values()}
