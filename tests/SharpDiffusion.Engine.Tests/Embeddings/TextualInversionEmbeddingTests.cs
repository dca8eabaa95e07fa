using System.Security.Cryptography;
using SharpDiffusion.Engine.Embeddings;
using SharpDiffusion.Engine.Tests.Hypernetworks;
using SharpDiffusion.Formats;
using SharpDiffusion.Formats.Safetensors;
using static TorchSharp.torch;

namespace SharpDiffusion.Engine.Tests.Embeddings;

/// <summary>The four embedding layouts A1111 reads, the metadata it keeps, and the file hash of its TI hashes infotext.</summary>
public class TextualInversionEmbeddingTests
{
    private static Tensor Vectors(int n, int c, int seed)
    {
        var g = new Generator((ulong)seed);
        return randn(new long[] { n, c }, generator: g);
    }

    private static TextualInversionEmbedding LoadSafetensors(string path)
    {
        using var file = SafetensorsFile.Open(path);
        return TextualInversionEmbedding.Load(file);
    }

    [Fact]
    public void A1111LayoutReadsStringToParamAndItsMetadata()
    {
        using var dir = new TempDir();
        using var vectors = Vectors(3, 32, 1);
        var path = dir.File("pekora.safetensors");
        SafetensorsTestWriter.Write(path, new[] { ("string_to_param.*", vectors) }, new Dictionary<string, string>
        {
            ["name"] = "pekora-19500", ["step"] = "19500", ["string_to_token.*"] = "265", ["sd_checkpoint"] = "45dee52b", ["sd_checkpoint_name"] = "null",
        });
        using var embedding = LoadSafetensors(path);
        Assert.Equal("pekora", embedding.Name); // A1111 uses the file name, not the stored name
        Assert.Equal("pekora-19500", embedding.StoredName);
        Assert.Equal(EmbeddingLayout.StringToParam, embedding.Layout);
        Assert.Equal(3, embedding.VectorCount);
        Assert.Equal(new[] { 32 }, embedding.Widths);
        Assert.Equal(19500L, embedding.Step);
        Assert.Equal("45dee52b", embedding.SdCheckpoint);
        Assert.Null(embedding.SdCheckpointName);
        Assert.True(embedding.Vectors!.equal(vectors).all().item<bool>());

        var sha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path)));
        Assert.Equal(sha, embedding.Sha256);
        Assert.Equal(sha[..12], embedding.ShortHash);
    }

    [Fact]
    public void KohyaEmbParamsIsASingleTensorEmbedding()
    {
        using var dir = new TempDir();
        using var vectors = Vectors(4, 32, 2);
        var path = dir.File("kohya.safetensors");
        SafetensorsTestWriter.Write(path, new[] { ("emb_params", vectors) }, new Dictionary<string, string> { ["ss_network_module"] = "x" });
        using var embedding = LoadSafetensors(path);
        Assert.Equal(EmbeddingLayout.SingleTensor, embedding.Layout);
        Assert.Equal(4, embedding.VectorCount);
        Assert.Null(embedding.Step);
        Assert.True(embedding.Vectors!.equal(vectors).all().item<bool>());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DiffusersLearnedEmbedsOneVectorWithOrWithoutTheRowAxis(bool withRowAxis)
    {
        using var vector = Vectors(1, 32, 3).reshape(withRowAxis ? new long[] { 1, 32 } : new long[] { 32 });
        using var file = new InMemoryModelFile("/x/learned_embeds.bin", new[] { ("<cat-toy>", vector) });
        using var embedding = TextualInversionEmbedding.Load(file);
        Assert.Equal("learned_embeds", embedding.Name);
        Assert.Equal(new long[] { 1, 32 }, embedding.Vectors!.shape);
        Assert.True(embedding.Vectors.equal(vector.reshape(1, 32)).all().item<bool>());
        Assert.Null(embedding.Sha256); // no file behind an in-memory model
    }

    [Fact]
    public void SdxlLayoutKeepsOneSetPerEncoder()
    {
        using var l = Vectors(2, 768, 4);
        using var g = Vectors(2, 1280, 5);
        using var file = new InMemoryModelFile("/x/negativeXL.safetensors", new[] { ("clip_g", g), ("clip_l", l) });
        using var embedding = TextualInversionEmbedding.Load(file);
        Assert.Equal(EmbeddingLayout.Sdxl, embedding.Layout);
        Assert.Equal(2, embedding.VectorCount);
        Assert.Equal(new[] { 768, 1280 }, embedding.Widths);
        Assert.Same(embedding.ClipL, embedding.VectorsFor(new[] { 768, 1280 }, 768, out var none));
        Assert.Null(none);
        Assert.Same(embedding.ClipG, embedding.VectorsFor(new[] { 768, 1280 }, 1280, out _));
        Assert.True(embedding.ClipG!.equal(g).all().item<bool>());
        Assert.Null(embedding.VectorsFor(new[] { 768 }, 768, out var problem));
        Assert.Equal("negativeXL: an SDXL embedding (clip_l 768 + clip_g 1280 wide), this model's text encoder takes 768", problem);
    }

    [Fact]
    public void ATorch111ParameterDictIsReadThroughItsParameters()
    {
        // torch 1.11 pickled string_to_param as a ParameterDict module; flattened, its tensor sits under _parameters.
        using var vectors = Vectors(2, 32, 10);
        using var file = new InMemoryModelFile("/x/old.pt", new[] { ("string_to_param._parameters.*", vectors) },
            new Dictionary<string, string> { ["string_to_param.training"] = "false", ["step"] = "null" });
        using var embedding = TextualInversionEmbedding.Load(file);
        Assert.Equal(EmbeddingLayout.StringToParam, embedding.Layout);
        Assert.Equal(2, embedding.VectorCount);
        Assert.Null(embedding.Step);
    }

    [Fact]
    public void HalfPrecisionVectorsBecomeFloat32()
    {
        using var vectors = Vectors(2, 32, 6).to(ScalarType.Float16);
        using var file = new InMemoryModelFile("/x/half.pt", new[] { ("string_to_param.*", vectors) });
        using var embedding = TextualInversionEmbedding.Load(file);
        Assert.Equal(ScalarType.Float32, embedding.Vectors!.dtype);
        Assert.True(embedding.Vectors.equal(vectors.to(ScalarType.Float32)).all().item<bool>());
    }

    [Fact]
    public void FilesThatAreNotEmbeddingsAreRefusedWithTheFileNamed()
    {
        using var a = Vectors(2, 32, 7);
        using var b = Vectors(2, 32, 8);
        using var twoTerms = new InMemoryModelFile("/x/two.pt", new[] { ("string_to_param.*", a), ("string_to_param.dog", b) });
        var e1 = Assert.Throws<InvalidModelFileException>(() => TextualInversionEmbedding.Load(twoTerms));
        Assert.Equal("/x/two.pt: embedding file has 2 terms in it (string_to_param.*, string_to_param.dog); one is supported", e1.Message);

        using var lora = new InMemoryModelFile("/x/lora.safetensors", new[] { ("lora_unet_a.lora_up.weight", a), ("lora_unet_a.lora_down.weight", b) });
        var e2 = Assert.Throws<InvalidModelFileException>(() => TextualInversionEmbedding.Load(lora));
        Assert.StartsWith("/x/lora.safetensors: not a textual-inversion embedding", e2.Message);

        using var cube = Vectors(8, 32, 9).reshape(2, 4, 32);
        using var threeD = new InMemoryModelFile("/x/cube.pt", new[] { ("emb_params", cube) });
        var e3 = Assert.Throws<InvalidModelFileException>(() => TextualInversionEmbedding.Load(threeD));
        Assert.Equal("/x/cube.pt: embedding tensor emb_params has shape [2, 4, 32]; expected [C] or [vectors, C]", e3.Message);
    }

    [Fact]
    public void WidthProblemsNameTheLikelyFamily()
    {
        using var sd2 = TextualInversionEmbedding.FromVectors("easynegative", zeros(2, 1024));
        Assert.Equal("easynegative: vectors are 1024 wide, this model's text encoder takes 768 (an SD2 embedding?)", sd2.CompatibilityProblem(new[] { 768 }));
        using var sd1 = TextualInversionEmbedding.FromVectors("bad-hands", zeros(1, 768));
        Assert.Equal("bad-hands: vectors are 768 wide, this model's text encoders take 768 + 1280 (an SD1 embedding?)", sd1.CompatibilityProblem(new[] { 768, 1280 }));
        Assert.Null(sd1.CompatibilityProblem(new[] { 768 }));
    }
}
