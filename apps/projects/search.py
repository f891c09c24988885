"""Full-text search over an organization's tasks: how a task's search vector is built, how a
query is read, and how highlighted snippets become safe HTML.

The vector (`TaskSearch.vector`: a row per task beside the task's own, in a GIN index) holds
the task's key as one lexeme `#demo-4`, its title (weight A), description (B) and comments (C),
each twice: stemmed (`english`, so "deployed" finds "deploy") and as written (`simple`, so a
word being typed matches as a prefix even where the stem is shorter than what was typed:
"descripti" is no prefix of the stem "descript"). services/search.py writes it;
selectors.task_search reads it in one statement.

A query is PostgreSQL's `websearch_to_tsquery` (quotes, `or`, `-word`; it never fails on odd
input) for the complete words, and a prefix match for the word being typed (the last one, when
the text does not end with a space). A key (`DEMO-4`, any case) matches that task first, and a
key being typed (`DEMO-`, `demo-1`) matches the keys it begins.
"""

import re
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

MAX_QUERY_LENGTH = 200
DEFAULT_LIMIT = 20
MAX_LIMIT = 50
# What a vector reads of long texts: enough to find a task by, bounded so that no text can
# outgrow a tsvector (1 MB) or make a write slow.
DESCRIPTION_CHARS = 50_000
COMMENTS_CHARS = 50_000
# ts_headline's marks and a stand-in for "<" (its parser drops what looks like an HTML tag):
# private-use characters, removed from the text first, so every one in its output is ours.
MARK_START, MARK_STOP, LESS_THAN = "\ue000", "\ue001", "\ue002"

KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,9}-[0-9]+$")
KEY_PREFIX_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{1,9}-[0-9]*$")
WORD_RE = re.compile(r"[^\W_]+")


def _refresh_sql(where: str) -> str:
    """An upsert of the search rows of the tasks `where` selects (alias t), built from the tasks."""
    texts = {"t.title": "A", f"left(t.description, {DESCRIPTION_CHARS})": "B", "c.body": "C"}
    # Keys are 2-10 capitals or digits, a hyphen and a number: safe inside a tsvector literal.
    parts = ["setweight(('''#' || lower(t.key) || ''':1')::tsvector, 'A')"]
    parts += [
        f"setweight(to_tsvector('{config}', {text}), '{weight}')"
        for text, weight in texts.items()
        for config in ("english", "simple")
    ]
    vector = "\n    || ".join(parts)
    comments = f"left(coalesce(string_agg(k.body, E'\\n' ORDER BY k.created_at DESC, k.id DESC), ''), {COMMENTS_CHARS})"
    return (
        "INSERT INTO projects_tasksearch (task_id, project_id, vector)\n"  # noqa: S608 - constants; values are parameters
        f"SELECT t.id, t.project_id,\n    {vector}\n"
        "  FROM projects_task t\n"
        f"  CROSS JOIN LATERAL (SELECT {comments} AS body FROM projects_comment k WHERE k.task_id = t.id) c\n"
        f"{where}"
        "ON CONFLICT (task_id) DO UPDATE SET project_id = EXCLUDED.project_id, vector = EXCLUDED.vector"
    )


# Some tasks' rows (run in the transaction that changed them), or every task's (a backfill).
REFRESH_SQL = _refresh_sql(" WHERE t.id = ANY(%(ids)s)\n")
REFRESH_ALL_SQL = _refresh_sql("")


@dataclass(frozen=True)
class SearchQuery:
    """What a person typed, split into the parts PostgreSQL gets as parameters."""

    text: str
    complete: str | None  # websearch_to_tsquery text: the complete words
    typing: str | None  # to_tsquery text "word & par:*": the word being typed, a prefix
    key_prefix: str | None  # a tsquery literal "'#demo-1':*": a key being typed
    key_phrase: str | None  # websearch_to_tsquery text: that key where the text mentions it
    exact_key: str | None  # "DEMO-4"
    key_lexeme: str | None  # a tsquery literal "'#demo-4'": that key, however the text ends
    highlight: str | None  # to_tsquery text "a:* | b:*": every word to mark in snippets

    @property
    def empty(self) -> bool:
        return not (self.complete or self.typing or self.key_prefix or self.exact_key)

    @classmethod
    def parse(cls, raw: str) -> "SearchQuery":
        text = " ".join(raw.split())  # tabs, line breaks and runs of spaces are one space
        tokens = text.split(" ") if text else []
        complete, last = text, None
        # The last word is being typed unless a space follows it, it closes or sits in a quote, it is
        # negated ("-word"), or it is the right side of an "or" (a prefix there would turn or into and).
        if tokens and not raw[-1].isspace() and '"' not in tokens[-1] and text.count('"') % 2 == 0:
            candidate = tokens[-1]
            after_or = len(tokens) > 1 and tokens[-2].lower() == "or"
            if not candidate.startswith("-") and candidate.lower() != "or" and not after_or:
                complete, last = " ".join(tokens[:-1]), candidate
        typing = key_prefix = key_phrase = None
        if last is not None and KEY_PREFIX_RE.match(last):
            key_prefix, key_phrase = f"'#{last.lower()}':*", last
        elif last is not None:
            parts = WORD_RE.findall(last)
            if parts:
                typing = " & ".join([*parts[:-1], f"{parts[-1]}:*"])
        words = [word.lower() for token in tokens if not token.startswith("-") for word in WORD_RE.findall(token)]
        return cls(
            text=text,
            complete=complete if WORD_RE.search(complete) else None,
            typing=typing,
            key_prefix=key_prefix,
            key_phrase=key_phrase,
            exact_key=text.upper() if KEY_RE.match(text) else None,
            key_lexeme=f"'#{text.lower()}'" if KEY_RE.match(text) else None,
            highlight=" | ".join(dict.fromkeys(f"{word}:*" for word in words)) or None,
        )


def tsquery_sql(query: SearchQuery) -> str:
    """The SQL of the query's tsquery (its values are the statement's named parameters)."""
    typed = []
    if query.typing:
        typed += ["to_tsquery('english', %(typing)s)", "to_tsquery('simple', %(typing)s)"]
    if query.key_prefix:
        typed += ["%(key_prefix)s::tsquery", "websearch_to_tsquery('english', %(key_phrase)s)"]
    parts = []
    if query.complete:
        parts.append("websearch_to_tsquery('english', %(complete)s)")
    if typed:
        parts.append("(" + " || ".join(typed) + ")")
    main = " && ".join(parts) if parts else "''::tsquery"
    return f"({main}) || %(key_lexeme)s::tsquery" if query.key_lexeme else main


def highlight_sql(query: SearchQuery) -> str:
    if not query.highlight:
        return "''::tsquery"
    return "(to_tsquery('english', %(highlight)s) || to_tsquery('simple', %(highlight)s))"


def marked_text_sql(expression: str, *, markdown: bool = False) -> str:
    """`expression` ready for ts_headline: our marks removed, "<" replaced by its stand-in, and for
    markdown the marks of bold, code, headings and quotes dropped (a snippet is read as text)."""
    replaced = expression
    for char in (MARK_START, MARK_STOP, LESS_THAN):
        replaced = f"replace({replaced}, chr({ord(char)}), '')"
    if markdown:
        replaced = f"regexp_replace({replaced}, {MARKDOWN_MARKS}, '', 'gn')"
    return f"replace({replaced}, '<', chr({ord(LESS_THAN)}))"


# Bold and code marks anywhere; heading and quote marks that open a line ('n': ^ is a line start).
MARKDOWN_MARKS = "'\\*\\*|__|`+|^ {0,3}#{1,6} +|^ {0,3}> ?'"


HEADLINE_OPTIONS = (
    f'StartSel={MARK_START}, StopSel={MARK_STOP}, MaxWords=14, MinWords=6, MaxFragments=2, FragmentDelimiter=" … "'
)
WHOLE_OPTIONS = f"StartSel={MARK_START}, StopSel={MARK_STOP}, HighlightAll=true"
SHORT_TEXT = 240  # characters: a text this short is shown whole, not cut into fragments around the words


def headline_sql(expression: str, highlight: str) -> str:
    """ts_headline of `expression`: whole when short, else up to two fragments around the matches."""
    text = marked_text_sql(expression, markdown=True)
    return (
        f"CASE WHEN length({expression}) <= {SHORT_TEXT}"
        f" THEN ts_headline('simple', {text}, {highlight}, %(whole_options)s)"
        f" ELSE ts_headline('simple', {text}, {highlight}, %(options)s) END"
    )


@dataclass(frozen=True)
class Highlighted:
    text: str  # plain text, marks removed
    html: SafeString  # escaped text with the marked words in <mark>
    marked: bool  # whether any word is marked


def highlighted(marked: str | None) -> Highlighted:
    """ts_headline's output as plain text and as safe HTML: everything escaped, only our marks
    become <mark> elements (balanced, whatever the text held)."""
    if not marked:
        return Highlighted("", mark_safe(""), False)
    plain: list[str] = []
    html: list[str] = []
    inside = any_mark = False
    for piece in re.split(f"([{MARK_START}{MARK_STOP}])", marked):
        if piece == MARK_START:
            if not inside:
                html.append("<mark>")
                inside = any_mark = True
        elif piece == MARK_STOP:
            if inside:
                html.append("</mark>")
                inside = False
        elif piece:
            text = re.sub(r"\s+", " ", piece.replace(LESS_THAN, "<"))
            plain.append(text)
            html.append(str(escape(text)))
    if inside:
        html.append("</mark>")
    return Highlighted("".join(plain).strip(), mark_safe("".join(html).strip()), any_mark)  # noqa: S308 - escaped above


SNIPPET_CHARS = 20_000  # of a description: what its snippet is cut from
# Ranking reads each matching vector (ts_rank): a word found in more tasks than this is ranked
# among its newest CANDIDATES matches, so that "the" costs what a rarer word does (an exact key
# is always among them).
CANDIDATES = 2_000


def search_sql(query: SearchQuery, *, every_project: bool) -> str:
    """The one statement of a search: the best `limit` readable tasks, then their highlights.

    Ranking reads only the narrow search rows (projects_tasksearch), and at most CANDIDATES of them
    (the newest matches); the tasks' own rows are read for the `limit` hits alone. An exact key
    needs no clause of its own: its task's vector holds the key as a lexeme, which the query
    names. Parameters: the query's parts by name, `exact_key`, `user_id` (unless
    `every_project`), `limit`, `options` and `whole_options`."""
    tsquery = tsquery_sql(query)
    exact = "s.task_id = (SELECT x.id FROM projects_task x WHERE x.key = %(exact_key)s)" if query.exact_key else "false"
    readable = (
        ""
        if every_project
        else "AND s.project_id IN (SELECT m.project_id FROM projects_projectmember m WHERE m.user_id = %(user_id)s)"
    )
    highlight = highlight_sql(query)
    return f"""
WITH matched AS MATERIALIZED (
  -- Ids only: the GIN index answers without reading a vector (the ranking reads them, below).
  SELECT s.task_id FROM projects_tasksearch s WHERE s.vector @@ ({tsquery}) {readable}
), candidates AS (
  SELECT m.task_id, coalesce({exact.replace("s.task_id", "m.task_id")}, false) AS exact
    FROM matched m
   ORDER BY exact DESC, m.task_id DESC
   LIMIT {CANDIDATES}
), ranked AS (
  SELECT c.task_id, c.exact, ts_rank(s.vector, {tsquery}) AS score
    FROM candidates c JOIN projects_tasksearch s ON s.task_id = c.task_id
   ORDER BY c.exact DESC, score DESC, c.task_id DESC
   LIMIT %(limit)s
), hits AS (
  SELECT t.id, t.key, t.title, left(t.description, {SNIPPET_CHARS}) AS description,
         t.board_id, t.project_id, t.column_id, t.archived_at, r.exact, r.score
    FROM ranked r JOIN projects_task t ON t.id = r.task_id
)
SELECT h.id, h.key, h.title, h.board_id, b.name, h.project_id, p.key, p.name, h.column_id, c.name,
       h.archived_at IS NOT NULL OR b.archived_at IS NOT NULL OR p.archived_at IS NOT NULL, h.exact,
       ts_headline('simple', {marked_text_sql("h.title")}, {highlight}, %(whole_options)s),
       {headline_sql("h.description", highlight)},
       (SELECT {headline_sql("k.body", highlight)}
          FROM projects_comment k
         WHERE k.task_id = h.id AND to_tsvector('simple', k.body) @@ {highlight}
         ORDER BY k.created_at DESC, k.id DESC LIMIT 1)
  FROM hits h
  JOIN projects_board b ON b.id = h.board_id
  JOIN projects_project p ON p.id = h.project_id
  JOIN projects_column c ON c.id = h.column_id
 ORDER BY h.exact DESC, h.score DESC, h.id DESC
"""  # noqa: S608 - built from this module's SQL; every value is a parameter


def search_params(query: SearchQuery, *, user_id: str, limit: int) -> dict[str, object]:
    return {
        "complete": query.complete,
        "typing": query.typing,
        "key_prefix": query.key_prefix,
        "key_phrase": query.key_phrase,
        "highlight": query.highlight,
        "exact_key": query.exact_key,
        "key_lexeme": query.key_lexeme,
        "user_id": user_id,
        "limit": limit,
        "options": HEADLINE_OPTIONS,
        "whole_options": WHOLE_OPTIONS,
    }


def search_hit(row: tuple) -> dict:
    """One result from a row of `search_sql`."""
    task_id, key, title, board_id, board_name, project_id, project_key, project_name = row[:8]
    column_id, column_name, archived, exact, title_marked, description_marked, comment_marked = row[8:]
    title_hl = highlighted(title_marked)
    description = highlighted(description_marked)
    comment = highlighted(comment_marked)
    if exact:
        matched = "key"
    elif description.marked:
        matched = "description"
    elif comment.marked:
        matched = "comment"
    elif title_hl.marked:
        matched = "title"
    else:
        matched = "text"
    snippet = comment if matched == "comment" else description
    return {
        "id": task_id,
        "key": key,
        "title": title,
        "title_html": title_hl.html if title_hl.text else escape(title),
        "board": board_id,
        "board_name": board_name,
        "project": project_id,
        "project_key": project_key,
        "project_name": project_name,
        "column": column_id,
        "column_name": column_name,
        "archived": archived,
        "matched": matched,
        "snippet": snippet.text,
        "snippet_html": snippet.html,
        "url": f"/boards/{board_id}/?task={task_id}",
    }
