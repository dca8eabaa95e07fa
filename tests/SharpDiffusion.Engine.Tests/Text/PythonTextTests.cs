using SharpDiffusion.Engine.Text.Tokenization;

namespace SharpDiffusion.Engine.Tests.Text;

/// <summary>Expected values are CPython 3.11's for the same calls.</summary>
public class PythonTextTests
{
    [Theory]
    [InlineData("&amp; &amp &lt;b&gt;", "& & <b>")]
    [InlineData("&#39;x&#39 &#x27;y&#X27;", "'x' 'y'")]
    [InlineData("&copy; &copy2024 &notit; &notin;", "© ©2024 ¬it; ∉")]
    [InlineData("&#128; &#0; &#x110000; &#xD800; &#1;", "€ \uFFFD \uFFFD \uFFFD ")]
    [InlineData("&unknown; & &; &# &#x", "&unknown; & &; &# &#x")]
    [InlineData("&NotANamedEntityButVeryLongLongLongName;", "&NotANamedEntityButVeryLongLongLongName;")]
    [InlineData("&amp;lt;", "&lt;")]
    public void HtmlUnescapeMatchesPython(string input, string expected) => Assert.Equal(expected, PythonText.HtmlUnescape(input));

    [Theory]
    [InlineData("ABC Ä", "abc ä")]
    [InlineData("\u0130", "i\u0307")]
    [InlineData("ΟΔΟΣ ΟΔΟΣ.", "\u03BF\u03B4\u03BF\u03C2 \u03BF\u03B4\u03BF\u03C2.")]
    [InlineData("Σ", "σ")]
    [InlineData("ΑΣΑ", "ασα")]
    public void LowerMatchesPython(string input, string expected) => Assert.Equal(expected, PythonText.Lower(input));

    [Fact]
    public void FinalSigmaBecomesTheFinalForm()
    {
        Assert.Equal("\u03BF\u03B4\u03CC\u03C2", PythonText.Lower("ΟΔΌΣ"));
        Assert.Equal("\u03B1\u03C2 \u03B2", PythonText.Lower("ΑΣ Β"));
        Assert.Equal("ασβ", PythonText.Lower("ΑΣΒ"));
    }

    [Theory]
    [InlineData("cafe\u0301", "caf\u00E9")]
    [InlineData("A\u030A", "\u00C5")]
    [InlineData("\u212B", "\u00C5")]                 // singleton decomposition (Angstrom sign)
    [InlineData("q\u0323\u0307", "q\u0323\u0307")]    // no composite exists; marks stay in canonical order
    [InlineData("q\u0307\u0323", "q\u0323\u0307")]    // reordered by combining class
    [InlineData("\u1100\u1161\u11A8", "\uAC01")]     // Hangul jamo compose algorithmically
    [InlineData("e\u0301\u0301", "\u00E9\u0301")]
    public void NfcMatchesPython(string input, string expected) => Assert.Equal(expected, PythonText.NormalizeNfc(input));

    [Fact]
    public void WhitespaceCollapseUsesUnicodeWhitespace()
    {
        Assert.Equal("a b c", PythonText.CollapseWhitespace(" a\u00A0\u3000b\r\n\tc\u2029"));
        Assert.Equal("x", PythonText.Strip("\u001Cx\u001F"));
    }
}
