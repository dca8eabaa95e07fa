using SharpDiffusion.Engine.Datasets.Emoji;

namespace SharpDiffusion.Engine.Tests.Datasets;

/// <summary>
/// The Debian files the emoji tests read. .ci/run installs them; when one is missing the test fails naming the
/// package, it never passes without testing.
/// </summary>
internal static class EmojiSystemFiles
{
    public static string Font() => EmojiRenderer.FindFont() ?? throw new Xunit.Sdk.XunitException(
        "Noto Color Emoji is not installed (looked in " + string.Join(", ", EmojiRenderer.KnownFontPaths)
        + "): apt-get install fonts-noto-color-emoji (.ci/run does)");

    public static string EmojiTest() => File.Exists(EmojiCatalog.SystemEmojiTestPath)
        ? EmojiCatalog.SystemEmojiTestPath
        : throw new Xunit.Sdk.XunitException($"{EmojiCatalog.SystemEmojiTestPath} is missing: apt-get install unicode-data (.ci/run does)");

    /// <summary>The caption list committed in the repository.</summary>
    public static string CaptionList() => TestPaths.Require(Path.Combine(TestPaths.RepoRoot, EmojiCatalog.RepositoryListPath));
}
