using System.Text;

namespace SharpDiffusion.Formats.Safetensors;

/// <summary>
/// Makes text taken from a file safe to put in a one-line error message: a corrupt name can hold newlines,
/// control characters or megabytes of text.
/// </summary>
internal static class MessageText
{
    public const int MaxQuotedLength = 120;

    /// <summary>Control characters escaped (\n, \u0001), long text cut with an ellipsis.</summary>
    public static string Quote(string text)
    {
        var sb = new StringBuilder(Math.Min(text.Length, MaxQuotedLength) + 8);
        foreach (char c in text)
        {
            if (sb.Length >= MaxQuotedLength)
            {
                sb.Append('…');
                break;
            }
            switch (c)
            {
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (char.IsControl(c)) sb.Append("\\u").Append(((int)c).ToString("x4"));
                    else sb.Append(c);
                    break;
            }
        }
        return sb.ToString();
    }

    /// <summary>Joins a multi-line system message (JSON reader, IO) into one line.</summary>
    public static string OneLine(string text) => text.ReplaceLineEndings(" ");
}
