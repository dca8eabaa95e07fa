using SharpDiffusion.Engine.ExtraNetworks;

namespace SharpDiffusion.Engine.Tests.ExtraNetworks;

public sealed class ModelsFolderTests
{
    [Fact]
    public void FindsNetworksByStemRecursivelyAndCaseSensitively()
    {
        using var dir = new TempDir();
        Touch(dir.File("Lora/sub/deep/detail.safetensors"));
        Touch(dir.File("LyCORIS/style.pt"));
        Touch(dir.File("Lora/readme.txt"));
        Touch(dir.File("hypernetworks/anime.pt"));
        Touch(dir.File("hypernetworks/notahn.safetensors"));
        var folder = new ModelsFolder(dir.Path);

        Assert.Equal(dir.File("Lora/sub/deep/detail.safetensors"), folder.FindLora("detail"));
        Assert.Equal(dir.File("LyCORIS/style.pt"), folder.FindLora("style"));
        Assert.Null(folder.FindLora("Detail"));
        Assert.Null(folder.FindLora("readme"));
        Assert.Equal(dir.File("hypernetworks/anime.pt"), folder.FindHypernetwork("anime"));
        Assert.Null(folder.FindHypernetwork("notahn"));
        Assert.Equal(2, folder.Loras().Count);
    }

    [Fact]
    public void LyCorisFolderWinsOverLoraFolderForTheSameStem()
    {
        using var dir = new TempDir();
        Touch(dir.File("Lora/same.safetensors"));
        Touch(dir.File("LyCORIS/same.safetensors"));
        Assert.Equal(dir.File("LyCORIS/same.safetensors"), new ModelsFolder(dir.Path).FindLora("same"));
    }

    [Fact]
    public void MissingFoldersFindNothingAndAMissingRootIsAnError()
    {
        using var dir = new TempDir();
        Assert.Null(new ModelsFolder(dir.Path).FindLora("x"));
        Assert.Throws<DirectoryNotFoundException>(() => new ModelsFolder(dir.File("nope")));
    }

    private static void Touch(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, [1]);
    }
}
