using SharpDiffusion.Engine.Datasets.Emoji;

namespace SharpDiffusion.Engine.Tests.Datasets;

public class EmojiCatalogTests
{
    [Fact]
    public void TheCommittedCaptionListHoldsThe1870FullyQualifiedEmojiWithoutSkinTones()
    {
        var entries = EmojiCatalog.ReadList(EmojiSystemFiles.CaptionList());
        Assert.Equal(1870, entries.Count);
        Assert.Equal(entries.Count, entries.Select(e => e.Name).Distinct().Count());
        Assert.DoesNotContain(entries, e => e.CodePoints.Any(EmojiCatalog.IsSkinTone));
        var apple = Assert.Single(entries, e => e.Name == "red apple");
        Assert.Equal([0x1F34E], apple.CodePoints);
        Assert.Equal("Food & Drink", apple.Group);
        Assert.Contains("fruit", apple.Keywords);
        Assert.Equal("👨‍👩‍👧‍👦", Assert.Single(entries, e => e.Name == "family: man, woman, girl, boy").Text);

        var licence = File.ReadAllText(TestPaths.Require(Path.Combine(TestPaths.RepoRoot, "data", "emoji", "LICENSE-Unicode.txt")));
        Assert.Contains("Unicode, Inc.", licence);
        Assert.Contains("LICENSE-Unicode.txt", File.ReadLines(EmojiSystemFiles.CaptionList()).First(l => l.Contains("Unicode License")));
    }

    [Fact]
    public void ParsingUnicodesEmojiTestGivesTheCommittedList()
    {
        var parsed = EmojiCatalog.ReadEmojiTest(EmojiSystemFiles.EmojiTest());
        Assert.Equal(1870, parsed.Count);
        var committed = EmojiCatalog.ReadList(EmojiSystemFiles.CaptionList());
        Assert.Equal(committed.Select(e => (e.CodePointText, e.Group, e.Subgroup, e.Name)), parsed.Select(e => (e.CodePointText, e.Group, e.Subgroup, e.Name)));
    }

    [Fact]
    public void OnlyFullyQualifiedEmojiWithoutSkinTonesAreKept()
    {
        const string excerpt = """
            # group: Smileys & Emotion

            # subgroup: face-smiling
            1F600                                                  ; fully-qualified     # 😀 E1.0 grinning face
            263A FE0F                                              ; fully-qualified     # ☺️ E0.6 smiling face
            263A                                                   ; unqualified         # ☺ E0.6 smiling face
            # group: People & Body
            # subgroup: hand-fingers-open
            1F44B                                                  ; fully-qualified     # 👋 E0.6 waving hand
            1F44B 1F3FB                                            ; fully-qualified     # 👋🏻 E1.0 waving hand: light skin tone
            1F441 200D 1F5E8                                       ; minimally-qualified # 👁‍🗨 E2.0 eye in speech bubble
            # group: Component
            1F3FB                                                  ; component           # 🏻 E1.0 light skin tone
            """;
        var entries = EmojiCatalog.ParseEmojiTest(new StringReader(excerpt), "excerpt");
        Assert.Equal(["grinning face", "smiling face", "waving hand"], entries.Select(e => e.Name));
        Assert.Equal([0x263A, 0xFE0F], entries[1].CodePoints);
        Assert.Equal(("People & Body", "hand-fingers-open"), (entries[2].Group, entries[2].Subgroup));

        var bad = Assert.Throws<Formats.InvalidModelFileException>(() => EmojiCatalog.ParseEmojiTest(new StringReader("1F600 fully-qualified"), "broken.txt"));
        Assert.Contains("broken.txt", bad.Message);
        Assert.Contains("line 1", bad.Message);
    }

    [Fact]
    public void CldrKeywordsAttachWithoutVariationSelectorsAndTheListRoundTrips()
    {
        using var dir = new TempDir();
        var xml = dir.File("en.xml");
        File.WriteAllText(xml, """
            <ldml><annotations>
              <annotation cp="☺">face | outlined | relaxed | smile | smiling face</annotation>
              <annotation cp="☺" type="tts">smiling face</annotation>
            </annotations></ldml>
            """);
        var entries = new List<EmojiEntry> { new([0x263A, 0xFE0F], "Smileys & Emotion", "face-affection", "smiling face", []), new([0x1FAE8], "Smileys & Emotion", "face-neutral-skeptical", "shaking face", []) };
        var annotated = EmojiCatalog.WithKeywords(entries, EmojiCatalog.ReadCldrKeywords([xml]));
        Assert.Equal(["face", "outlined", "relaxed", "smile", "smiling face"], annotated[0].Keywords);
        Assert.Empty(annotated[1].Keywords);

        var list = dir.File("list.tsv");
        EmojiCatalog.WriteList(list, annotated, ["test list"]);
        var read = EmojiCatalog.ReadList(list);
        Assert.Equal(annotated.Select(e => (e.CodePointText, e.Group, e.Subgroup, e.Name, string.Join("|", e.Keywords))),
            read.Select(e => (e.CodePointText, e.Group, e.Subgroup, e.Name, string.Join("|", e.Keywords))));
    }

    [Fact]
    public void CaptionsStartWithTheNameThenReadAsEnglish()
    {
        static EmojiEntry E(string name, params string[] keywords) => new([0x1F600], "g", "s", name, keywords);
        Assert.Equal(["red apple", "an emoji of a red apple", "red apple emoji", "red apple, fruit"], EmojiCaptions.For(E("red apple", "apple", "fruit", "red", "red apple")));
        Assert.Equal("an emoji of the flag of Japan", EmojiCaptions.For(E("flag: Japan", "flag"))[1]);
        Assert.Equal("an emoji of an octopus", EmojiCaptions.For(E("octopus"))[1]);
        Assert.Equal("an emoji of people holding hands", EmojiCaptions.For(E("people holding hands"))[1]);
        Assert.Equal(["keycap: 1", "an emoji of a keycap 1", "keycap 1 emoji"], EmojiCaptions.For(E("keycap: 1", "keycap")));
        // Keywords that only repeat the name's words are left out.
        Assert.Equal(3, EmojiCaptions.For(E("family: man, woman, girl, boy", "boy", "family", "girl", "man", "woman")).Count);
    }

    [Fact]
    public void FileStemsKeepListOrderAndAreAscii()
    {
        Assert.Equal("0000_grinning-face", EmojiDataset.FileStem(0, "grinning face"));
        Assert.Equal("0041_pinata", EmojiDataset.FileStem(41, "piñata"));
        Assert.Equal("1234_twelve-oclock", EmojiDataset.FileStem(1234, "twelve o’clock"));
        Assert.Equal("0007_family-man-woman-girl-boy", EmojiDataset.FileStem(7, "family: man, woman, girl, boy"));
        Assert.Equal("0008_keycap", EmojiDataset.FileStem(8, "keycap: *"));
        Assert.Equal("0009_flag-aland-islands", EmojiDataset.FileStem(9, "flag: Åland Islands"));
    }
}
