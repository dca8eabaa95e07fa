using System.Globalization;
using System.Text;
using SharpDiffusion.Formats;

namespace SharpDiffusion.Engine.Models;

/// <summary>
/// Reads the YAML subset that LDM/sgm model configs use (v1-inference.yaml, v2-inference-v.yaml,
/// sd_xl_base.yaml): indentation-nested maps, block sequences ("- item", including "- key: value" maps),
/// flow lists/maps ("[4, 2, 1]", "{}"), quoted and plain scalars, comments. Scalars are typed as PyYAML does
/// for these files: null/~, true/false (any case, yes/no), integers, floats ("1.e-6"), otherwise strings.
/// Anchors, tags, multi-line flow collections and block scalars are rejected with a clear error.
/// </summary>
public static class YamlSubsetReader
{
    private readonly record struct Line(int Number, int Indent, string Text);

    public static ConfigTree ReadFile(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (IOException e) { throw new InvalidModelFileException(path, "cannot read the config: " + e.Message, e); }
        return new ConfigTree(Parse(text, path), path);
    }

    public static object? Parse(string text, string source)
    {
        var lines = Tokenize(text, source);
        if (lines.Count == 0) return null;
        int index = 0;
        var root = ParseBlock(lines, ref index, lines[0].Indent, source);
        if (index < lines.Count) throw Error(source, lines[index], "unexpected indentation");
        return root;
    }

    private static List<Line> Tokenize(string text, string source)
    {
        var result = new List<Line>();
        var raw = text.Replace("\r\n", "\n").Split('\n');
        for (int i = 0; i < raw.Length; i++)
        {
            var line = StripComment(raw[i]).TrimEnd();
            if (line.Trim().Length == 0 || line.Trim() == "---") continue;
            if (line.Contains('\t') && line.TrimStart(' ').StartsWith('\t'))
                throw new InvalidModelFileException(source, $"line {i + 1}: tab indentation is not valid YAML");
            int indent = line.Length - line.TrimStart(' ').Length;
            result.Add(new Line(i + 1, indent, line[indent..]));
        }
        return result;
    }

    /// <summary>Removes a "#" comment that starts the line or follows whitespace, outside quotes.</summary>
    private static string StripComment(string line)
    {
        char quote = '\0';
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quote != '\0') { if (c == quote) quote = '\0'; continue; }
            if (c is '"' or '\'') quote = c;
            else if (c == '#' && (i == 0 || char.IsWhiteSpace(line[i - 1]))) return line[..i];
        }
        return line;
    }

    private static bool IsSequenceItem(string text) => text == "-" || text.StartsWith("- ", StringComparison.Ordinal);

    private static object? ParseBlock(List<Line> lines, ref int index, int indent, string source) =>
        IsSequenceItem(lines[index].Text) ? ParseSequence(lines, ref index, indent, source) : ParseMapping(lines, ref index, indent, source);

    private static Dictionary<string, object?> ParseMapping(List<Line> lines, ref int index, int indent, string source)
    {
        var map = new Dictionary<string, object?>(StringComparer.Ordinal);
        while (index < lines.Count && lines[index].Indent == indent && !IsSequenceItem(lines[index].Text))
        {
            var line = lines[index];
            var (key, rest) = SplitKey(line, source);
            index++;
            object? value;
            if (rest.Length > 0) value = ParseInline(rest, line, source);
            else if (index < lines.Count && lines[index].Indent > indent) value = ParseBlock(lines, ref index, lines[index].Indent, source);
            else if (index < lines.Count && lines[index].Indent == indent && IsSequenceItem(lines[index].Text))
                value = ParseSequence(lines, ref index, indent, source);
            else value = null;
            map[key] = value;
        }
        if (index < lines.Count && lines[index].Indent > indent) throw Error(source, lines[index], "unexpected indentation");
        return map;
    }

    private static List<object?> ParseSequence(List<Line> lines, ref int index, int indent, string source)
    {
        var list = new List<object?>();
        while (index < lines.Count && lines[index].Indent == indent && IsSequenceItem(lines[index].Text))
        {
            var line = lines[index];
            var rest = line.Text.Length > 1 ? line.Text[1..] : "";
            int offset = 1 + rest.Length - rest.TrimStart(' ').Length;
            rest = rest.Trim();
            if (rest.Length == 0)
            {
                index++;
                list.Add(index < lines.Count && lines[index].Indent > indent ? ParseBlock(lines, ref index, lines[index].Indent, source) : null);
            }
            else if (IsSequenceItem(rest) || LooksLikeMapEntry(rest))
            {
                // "- key: value" starts a map whose keys line up with "key"; re-read this line at that indent.
                lines[index] = new Line(line.Number, indent + offset, rest);
                list.Add(ParseBlock(lines, ref index, indent + offset, source));
            }
            else
            {
                index++;
                list.Add(ParseInline(rest, line, source));
            }
        }
        return list;
    }

    private static bool LooksLikeMapEntry(string text)
    {
        if (text.StartsWith('[') || text.StartsWith('{') || text.StartsWith('"') || text.StartsWith('\'')) return false;
        int colon = text.IndexOf(':');
        return colon > 0 && (colon == text.Length - 1 || text[colon + 1] == ' ');
    }

    private static (string Key, string Value) SplitKey(Line line, string source)
    {
        var text = line.Text;
        string key;
        int after;
        if (text[0] is '"' or '\'')
        {
            int close = text.IndexOf(text[0], 1);
            if (close < 0) throw Error(source, line, "unterminated quoted key");
            key = text[1..close];
            after = close + 1;
            if (after >= text.Length || text[after] != ':') throw Error(source, line, "expected ':' after the key");
        }
        else
        {
            after = -1;
            for (int i = 0; i < text.Length; i++)
            {
                if (text[i] == ':' && (i == text.Length - 1 || text[i + 1] == ' ')) { after = i; break; }
            }
            if (after <= 0) throw Error(source, line, "expected 'key: value'");
            key = text[..after].Trim();
        }
        return (key, text[(after + 1)..].Trim());
    }

    private static object? ParseInline(string text, Line line, string source)
    {
        if (text.StartsWith('&') || text.StartsWith('*') || text.StartsWith('!'))
            throw Error(source, line, "anchors, aliases and tags are not supported");
        if (text is "|" or ">" || text.StartsWith("|-") || text.StartsWith(">-"))
            throw Error(source, line, "block scalars are not supported");
        int pos = 0;
        var value = ParseFlow(text, ref pos, line, source, inFlow: false);
        SkipSpaces(text, ref pos);
        if (pos != text.Length) throw Error(source, line, $"unexpected text '{text[pos..]}'");
        return value;
    }

    private static object? ParseFlow(string text, ref int pos, Line line, string source, bool inFlow)
    {
        SkipSpaces(text, ref pos);
        if (pos >= text.Length) return null;
        char c = text[pos];
        if (c == '[')
        {
            pos++;
            var list = new List<object?>();
            SkipSpaces(text, ref pos);
            if (pos < text.Length && text[pos] == ']') { pos++; return list; }
            while (true)
            {
                list.Add(ParseFlow(text, ref pos, line, source, inFlow: true));
                SkipSpaces(text, ref pos);
                if (pos >= text.Length) throw Error(source, line, "unterminated '[' (multi-line flow lists are not supported)");
                if (text[pos] == ',') { pos++; continue; }
                if (text[pos] == ']') { pos++; return list; }
                throw Error(source, line, $"expected ',' or ']' at column {pos + 1}");
            }
        }
        if (c == '{')
        {
            pos++;
            var map = new Dictionary<string, object?>(StringComparer.Ordinal);
            SkipSpaces(text, ref pos);
            if (pos < text.Length && text[pos] == '}') { pos++; return map; }
            while (true)
            {
                var key = ParseFlow(text, ref pos, line, source, inFlow: true);
                SkipSpaces(text, ref pos);
                if (pos >= text.Length || text[pos] != ':') throw Error(source, line, "expected ':' in a flow map");
                pos++;
                map[Convert.ToString(key, CultureInfo.InvariantCulture) ?? "null"] = ParseFlow(text, ref pos, line, source, inFlow: true);
                SkipSpaces(text, ref pos);
                if (pos >= text.Length) throw Error(source, line, "unterminated '{'");
                if (text[pos] == ',') { pos++; continue; }
                if (text[pos] == '}') { pos++; return map; }
                throw Error(source, line, $"expected ',' or '}}' at column {pos + 1}");
            }
        }
        if (c is '"' or '\'') return ParseQuoted(text, ref pos, line, source);

        int start = pos;
        while (pos < text.Length)
        {
            char d = text[pos];
            if (inFlow && (d is ',' or ']' or '}')) break;
            if (inFlow && d == ':' && (pos + 1 == text.Length || text[pos + 1] == ' ')) break;
            pos++;
        }
        return PlainScalar(text[start..pos].Trim());
    }

    private static string ParseQuoted(string text, ref int pos, Line line, string source)
    {
        char quote = text[pos++];
        var sb = new StringBuilder();
        while (pos < text.Length)
        {
            char c = text[pos++];
            if (quote == '\'' && c == '\'')
            {
                if (pos < text.Length && text[pos] == '\'') { sb.Append('\''); pos++; continue; }
                return sb.ToString();
            }
            if (quote == '"' && c == '"') return sb.ToString();
            if (quote == '"' && c == '\\' && pos < text.Length)
            {
                char e = text[pos++];
                sb.Append(e switch { 'n' => '\n', 't' => '\t', '\\' => '\\', '"' => '"', '0' => '\0', _ => e });
                continue;
            }
            sb.Append(c);
        }
        throw Error(source, line, "unterminated quoted string");
    }

    private static object? PlainScalar(string s)
    {
        switch (s)
        {
            case "" or "~" or "null" or "Null" or "NULL": return null;
            case "true" or "True" or "TRUE" or "yes" or "Yes" or "YES" or "on" or "On" or "ON": return true;
            case "false" or "False" or "FALSE" or "no" or "No" or "NO" or "off" or "Off" or "OFF": return false;
        }
        var digits = s.Replace("_", "");
        if (long.TryParse(digits, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)) return l;
        if (digits.Length > 0 && (char.IsDigit(digits[0]) || digits[0] is '-' or '+' or '.')
            && double.TryParse(digits, NumberStyles.Float, CultureInfo.InvariantCulture, out var d)) return d;
        return s;
    }

    private static void SkipSpaces(string text, ref int pos)
    {
        while (pos < text.Length && text[pos] == ' ') pos++;
    }

    private static InvalidModelFileException Error(string source, Line line, string problem) =>
        new(source, $"line {line.Number}: {problem}");
}
