"""The words of a generation request that `request_parser` knows, and what each one means.

A request is the few words a learner or an instructor types ("10 hard questions on
chapter 3, no calculator"). Most of its words change nothing about the answer (please,
could you, the, a quiz of...), a few say the same thing in other words (brief/short,
key/main), and some decide the answer (numbers, "not", the format, the audience, the
language, the topic). This module lists the first two kinds and names the third, so the
parser can reduce two requests to what decides their answers and compare that exactly.

A concept is a plain string; prefixes mark the structured fields the cache must match
exactly: `lvl:` difficulty, `fmt:` format, `aud:` audience, `lang:` language. `""` means
"drop the word". The lists are deliberately general (common English usage in a course),
never tailored to one evaluation pair: anything not listed stays a word of its own and
must then appear in both requests.
"""

__all__ = [
    "CONTRACTIONS",
    "DROP",
    "KIND_WORDS",
    "LANGUAGES",
    "NEGATORS",
    "NUMBER_WORDS",
    "PHRASES",
    "PLURAL_KEEP",
    "QUESTION_NOUN",
    "RELATIONS",
    "WORDS",
]


def _words(text: str) -> list[str]:
    return text.split()


QUESTION_NOUN = "<question>"
"""What "question", "mcq", "item" become: counted by a number before them, else a word."""

NEGATORS = frozenset(
    _words(
        "not no never without except excluding exclude omit omitting skip skipping avoid"
        " avoiding minus none neither nor"
    )
)
"""Words that turn the next concept around: "with X" and "without X" want other answers."""

RELATIONS = frozenset(_words("than versus vs into over"))
"""Words whose two sides may not swap ("more A than B"): their neighbours are compared in order."""

CONTRACTIONS = {
    "won't": "will not",
    "can't": "can not",
    "cannot": "can not",
    "shan't": "shall not",
    "ain't": "is not",
}

NUMBER_WORDS = {
    "zero": 0,
    "one": 1,
    "single": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "dozen": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
    "thousand": 1000,
}

PLURAL_KEEP = frozenset(
    _words(
        "this is was has does goes its his hers ours yours theirs us yes always perhaps whereas"
        " news series species maths physics mathematics economics politics ethics genetics"
        " statistics linguistics athletics gas bias lens atlas canvas chaos cosmos thanks"
        " sometimes less unless plus minus thus"
    )
)
"""Words ending in s that are not plurals (the parser strips a plural s otherwise)."""

LANGUAGES = frozenset(
    _words(
        "english spanish french german italian portuguese dutch swedish norwegian danish"
        " finnish estonian latvian lithuanian polish czech slovak hungarian romanian bulgarian"
        " greek turkish russian ukrainian belarusian serbian croatian bosnian slovenian albanian"
        " arabic hebrew persian farsi urdu hindi bengali punjabi tamil telugu marathi gujarati"
        " kannada malayalam nepali sinhala chinese mandarin cantonese japanese korean vietnamese"
        " thai lao khmer burmese indonesian malay tagalog filipino swahili zulu xhosa afrikaans"
        " amharic somali yoruba igbo hausa catalan basque galician welsh irish gaelic icelandic"
        " latin esperanto maori hawaiian kurdish pashto georgian armenian azerbaijani kazakh"
        " uzbek mongolian"
    )
)
"""Language names: "in X" asks for an answer in that language."""

# The answer's own nouns and verbs: in a quiz, "a quiz", "a test" and "questions" are what
# is asked for anyway, so they say nothing; in an explanation "explain" says nothing.
KIND_WORDS: dict[str, frozenset[str]] = {
    "quiz": frozenset(_words("quiz quizz quizze test assessment assess exam examination check")),
    "summary": frozenset(
        _words(
            "summary summarise summarize summarised summarized summarising summarizing"
            " recap overview synopsis rundown gist digest outline notes note"
        )
    ),
    "explanation": frozenset(
        _words(
            "explain explanation explaining explained describe description clarify"
            " clarification teach"
        )
    ),
}

# Words that never change the answer: articles, pronouns, auxiliaries, most prepositions,
# politeness, and the verbs of asking ("make", "give me", "could you write").
DROP = frozenset(
    # articles, determiners, pronouns
    _words(
        "a an the this that these those some any it its they them their i me my mine we us our"
        " you your u ur he she him her there here one's wat wut"
        # auxiliaries and modals
        " is are am be been being was were do does did doing have has had having will would"
        " shall should can could may might must"
        # prepositions and conjunctions that do not decide the answer
        " on about of in for to with by at from as and or regarding covering concerning around"
        " re per within across through throughout via upon onto so if between"
        # adverbs of degree and fillers
        " just only also really actually very quite pretty rather too bit again even still"
        " basically literally maybe perhaps possibly kind sort"
        # politeness and greetings
        " please pls plz kindly thanks thank thx ty cheers hi hello hey dear sorry appreciate"
        " appreciated grateful morning afternoon evening much lot lots great nice wonderful"
        " awesome perfect helpful advance bother possible ok okay :)"
        # verbs of asking
        " make making made create creating write writing generate produce prepare give giving"
        " get getting provide build design draft set put send show tell mind like love want"
        " wanted need needed wish let help use using used"
        # question words that do not decide the answer on their own
        " what how"
    )
)

# Multi-word expressions, matched before single words (longest first). The value is the
# concepts they become; an empty tuple drops them.
PHRASES: dict[tuple[str, ...], tuple[str, ...]] = {
    # politeness and a learner's state of mind
    ("be", "so", "kind", "as"): (),
    ("would", "you", "mind"): (),
    ("if", "you", "can"): (),
    ("if", "you", "could"): (),
    ("would", "be", "great"): (),
    ("thanks", "in", "advance"): (),
    ("thank", "you"): (),
    ("i", "am", "confused"): (),
    ("i", "am", "struggling"): (),
    ("i", "am", "lost"): (),
    ("i", "am", "stuck"): (),
    ("confused", "about"): (),
    ("i", "do", "not", "understand"): (),
    ("i", "do", "not", "get", "it"): (),
    ("i", "do", "not", "get"): (),
    ("i", "keep", "getting", "confused"): (),
    ("can", "i", "have"): (),
    ("can", "i", "get"): (),
    ("come", "up", "with"): (),
    ("put", "together"): (),
    ("help", "me", "understand"): (),
    ("help", "me", "grasp"): (),
    ("walk", "me", "through"): (),
    ("go", "through"): (),
    ("break", "down"): (),
    ("tell", "me", "about"): (),
    ("sum", "up"): (),
    ("sum", "it", "up"): (),
    ("more", "or", "less"): (),
    # formats
    ("multiple", "choice", "question"): ("fmt:mcq", QUESTION_NOUN),
    ("multiple", "choice"): ("fmt:mcq",),
    ("multi", "choice"): ("fmt:mcq",),
    ("true", "or", "false"): ("fmt:truefalse",),
    ("true", "false"): ("fmt:truefalse",),
    ("yes", "or", "no"): ("fmt:yesno",),
    ("yes", "no"): ("fmt:yesno",),
    ("fill", "in", "the", "blank"): ("fmt:fillblank",),
    ("fill", "in", "the", "gap"): ("fmt:fillblank",),
    ("gap", "fill"): ("fmt:fillblank",),
    ("short", "answer"): ("fmt:shortanswer",),
    ("open", "ended"): ("fmt:openended",),
    ("free", "response"): ("fmt:openended",),
    ("bullet", "point"): ("fmt:bullet",),
    ("bullet", "pointed"): ("fmt:bullet",),
    ("numbered", "list"): ("fmt:numberedlist",),
    ("mind", "map"): ("fmt:mindmap",),
    ("flow", "chart"): ("fmt:flowchart",),
    ("word", "search"): ("fmt:wordsearch",),
    ("question", "and", "answer"): ("fmt:qa",),
    ("news", "article"): ("fmt:article",),
    ("answer", "key"): ("answerkey",),
    ("a", "list"): ("fmt:list",),
    ("in", "list", "form"): ("fmt:list",),
    # difficulty and style
    ("in", "simple", "term"): ("lvl:easy",),
    ("in", "simple", "word"): ("lvl:easy",),
    ("in", "easy", "word"): ("lvl:easy",),
    ("in", "plain", "english"): ("lvl:easy",),
    ("in", "simple", "english"): ("lvl:easy",),
    ("in", "plain", "language"): ("lvl:easy",),
    ("in", "simple", "language"): ("lvl:easy",),
    ("in", "plain", "word"): ("lvl:easy",),
    ("in", "layman", "term"): ("lvl:easy",),
    ("in", "everyday", "language"): ("lvl:easy",),
    ("easy", "to", "understand"): ("lvl:easy",),
    ("more", "difficult"): ("lvl:hard",),
    ("more", "challenging"): ("lvl:hard",),
    ("less", "difficult"): ("lvl:easy",),
    ("step", "by", "step"): ("stepbystep",),
    ("one", "step", "at", "a", "time"): ("stepbystep",),
    ("stage", "by", "stage"): ("stepbystep",),
    ("piece", "by", "piece"): ("stepbystep",),
    ("real", "life"): ("reallife",),
    ("real", "world"): ("reallife",),
    ("daily", "life"): ("reallife",),
    ("in", "a", "different", "way"): ("rephrase",),
    ("another", "way"): ("rephrase",),
    ("in", "other", "word"): ("rephrase",),
    ("worked", "example"): ("workedexample",),
    ("solved", "example"): ("workedexample",),
    ("in", "a", "nutshell"): ("short",),
    ("rather", "than"): ("not",),
    ("instead", "of"): ("not",),
    ("other", "than"): ("not",),
    ("apart", "from"): ("not",),
    ("leave", "out"): ("not",),
    ("leaving", "out"): ("not",),
    ("a", "couple", "of"): ("2",),
    ("a", "couple"): ("2",),
    ("a", "few"): ("few",),
    ("key", "word"): ("vocabulary",),
    # audiences
    ("like", "i", "am", "five"): ("aud:child",),
    ("like", "i", "am", "5"): ("aud:child",),
    ("as", "if", "i", "were", "a", "small", "child"): ("aud:child",),
    ("as", "if", "i", "were", "a", "child"): ("aud:child",),
    ("as", "if", "i", "were", "five"): ("aud:child",),
    ("small", "child"): ("aud:child",),
    ("young", "child"): ("aud:child",),
    ("primary", "school"): ("aud:child",),
    ("elementary", "school"): ("aud:child",),
    ("high", "school"): ("aud:highschool",),
    ("secondary", "school"): ("aud:highschool",),
    ("new", "to"): ("aud:beginner",),
    ("just", "starting"): ("aud:beginner",),
    ("starting", "out"): ("aud:beginner",),
    ("native", "speaker"): ("aud:native",),
    ("non", "native", "speaker"): ("aud:nonnative",),
    ("language", "learner"): ("aud:nonnative",),
    ("grown", "up"): ("aud:adult",),
}

# Single words: synonyms share one concept; "" drops the word.
WORDS: dict[str, str] = {
    # what a request is about, in the words people use for it
    **dict.fromkeys(
        _words("main key important central core big major principal essential crucial chief"),
        "main",
    ),
    **dict.fromkeys(_words("idea concept point takeaway notion topic"), "idea"),
    **dict.fromkeys(_words("vocabulary vocab term terminology keyword"), "vocabulary"),
    **dict.fromkeys(
        _words("understanding understand comprehension comprehend grasp"), "understand"
    ),
    **dict.fromkeys(_words("revision revise revising review reviewing"), "revision"),
    **dict.fromkeys(_words("reason reasoning why"), "why"),
    **dict.fromkeys(
        _words("difference different differ differentiate distinguish contrast compare comparison"),
        "compare",
    ),
    **dict.fromkeys(_words("example instance"), "example"),
    **dict.fromkeys(_words("everyday practical"), "reallife"),
    **dict.fromkeys(
        _words("include including includes contain containing feature featuring cover"), ""
    ),
    **dict.fromkeys(_words("work works function functions operate operates"), "work"),
    **dict.fromkeys(_words("mean meaning define definition"), "definition"),
    **dict.fromkeys(_words("test exam examination"), "exam"),
    **dict.fromkeys(_words("all every each whole entire"), "all"),
    **dict.fromkeys(_words("rephrase reword differently"), "rephrase"),
    **dict.fromkeys(_words("tldr"), "short"),
    # what a quiz is made of: counted by a number before it ("10 questions")
    **dict.fromkeys(_words("question item problem"), QUESTION_NOUN),
    "mcq": f"fmt:mcq {QUESTION_NOUN}",
    # length
    **dict.fromkeys(_words("short brief quick concise succinct shorter briefer"), "short"),
    **dict.fromkeys(_words("long detailed thorough comprehensive lengthy longer"), "long"),
    # difficulty
    **dict.fromkeys(
        _words("easy easier simple simpler simply basic straightforward plain"), "lvl:easy"
    ),
    **dict.fromkeys(
        _words("hard harder difficult challenging tough tougher tricky demanding advanced"),
        "lvl:hard",
    ),
    **dict.fromkeys(_words("medium intermediate moderate"), "lvl:medium"),
    # formats
    **dict.fromkeys(_words("bullet bullets bulleted"), "fmt:bullet"),
    **dict.fromkeys(_words("paragraph"), "fmt:paragraph"),
    **dict.fromkeys(_words("table tabular"), "fmt:table"),
    "list": "",  # the verb ("list the key points"); "a list" is a format
    **dict.fromkeys(_words("timeline"), "fmt:timeline"),
    **dict.fromkeys(_words("essay"), "fmt:essay"),
    **dict.fromkeys(_words("poem verse"), "fmt:poem"),
    **dict.fromkeys(_words("story narrative"), "fmt:story"),
    **dict.fromkeys(_words("dialogue dialog conversation"), "fmt:dialogue"),
    **dict.fromkeys(_words("flowchart"), "fmt:flowchart"),
    **dict.fromkeys(_words("diagram"), "fmt:diagram"),
    **dict.fromkeys(_words("flashcard"), "fmt:flashcard"),
    **dict.fromkeys(_words("worksheet"), "fmt:worksheet"),
    **dict.fromkeys(_words("matching"), "fmt:matching"),
    **dict.fromkeys(_words("crossword"), "fmt:crossword"),
    **dict.fromkeys(_words("tweet"), "fmt:tweet"),
    **dict.fromkeys(_words("qa"), "fmt:qa"),
    **dict.fromkeys(_words("prose"), "fmt:prose"),
    **dict.fromkeys(_words("pseudocode"), "fmt:pseudocode"),
    **dict.fromkeys(_words("code snippet"), "fmt:code"),
    **dict.fromkeys(_words("analogy"), "fmt:analogy"),
    **dict.fromkeys(_words("truefalse"), "fmt:truefalse"),
    # audiences
    **dict.fromkeys(_words("beginner novice newbie newcomer introductory intro"), "aud:beginner"),
    **dict.fromkeys(_words("expert specialist professional"), "aud:expert"),
    **dict.fromkeys(_words("child children kid kids toddler"), "aud:child"),
    **dict.fromkeys(_words("teenager teen"), "aud:teen"),
    **dict.fromkeys(_words("adult"), "aud:adult"),
    **dict.fromkeys(_words("teacher instructor educator"), "aud:teacher"),
    **dict.fromkeys(_words("parent"), "aud:parent"),
    **dict.fromkeys(_words("university college undergraduate undergrad"), "aud:university"),
    **dict.fromkeys(_words("phd postgraduate doctoral graduate"), "aud:graduate"),
    # who the answer is for by default: the course's students
    **dict.fromkeys(_words("student pupil learner class group"), ""),
    # the lesson itself: every request is about it
    **dict.fromkeys(_words("lesson"), ""),
}
