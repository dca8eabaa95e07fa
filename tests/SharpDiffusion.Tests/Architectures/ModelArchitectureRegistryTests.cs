using SharpDiffusion.Architectures;
using SharpDiffusion.Formats;
using SharpDiffusion.Inspection;
using SharpDiffusion.Tests.Fixtures;
using SharpDiffusion.Tests.Fixtures.KeySets;

namespace SharpDiffusion.Tests.Architectures;

/// <summary>
/// The registry describes each family once; these tests hold every description against full-size key sets (built by
/// generators that reproduce the real SD1.5 inventory exactly), the reference inventories and the tiny goldens, and
/// check that the classifier's verdict maps back to the same architecture.
/// </summary>
public class ModelArchitectureRegistryTests
{
    /// <summary>Full-size key sets of every LDM architecture the registry lists, by the architecture they should classify as.</summary>
    public static TheoryData<string> LdmArchitectures() => new()
    {
        "SD1", "SD1 (inpaint)", "SD1 (instruct-pix2pix)", "SD2", "SD2 (inpaint)", "SDXL", "SDXL (inpaint)", "SDXL refiner",
    };

    private static List<KeyEntry> KeysOf(ModelArchitecture architecture) => architecture switch
    {
        { Family: BaseFamily.SD1 } => CheckpointKeySets.SD15(inChannels: architecture.InputChannels),
        { Family: BaseFamily.SD2 } => CheckpointKeySets.SD2(inChannels: architecture.InputChannels),
        { Family: BaseFamily.SDXL } => CheckpointKeySets.SDXL(inChannels: architecture.InputChannels),
        { Family: BaseFamily.SDXLRefiner } => CheckpointKeySets.SDXLRefiner(),
        _ => throw new ArgumentException(architecture.DisplayName),
    };

    private static ModelArchitecture Named(string displayName) => ModelArchitectures.All.Single(a => a.DisplayName == displayName);

    [Theory]
    [MemberData(nameof(LdmArchitectures))]
    public void Every_ldm_architecture_describes_the_weights_of_its_family(string name)
    {
        var architecture = Named(name);
        var file = InMemoryModelFile.From(KeySet.Of(KeysOf(architecture)));
        var names = file.Tensors.ToDictionary(t => t.Name);
        var verdict = ModelClassifier.Classify(file);

        // The classifier's verdict maps back to exactly this architecture.
        Assert.Same(architecture, ModelArchitectures.Of(verdict));
        Assert.Equal(ModelKind.Checkpoint, verdict.Kind);

        // Its prefixes are where the weights are.
        Assert.Contains(file.Tensors, t => t.Name.StartsWith(architecture.DenoiserPrefix, StringComparison.Ordinal));
        Assert.Contains(file.Tensors, t => t.Name.StartsWith(architecture.VaePrefix, StringComparison.Ordinal));
        foreach (var encoder in architecture.TextEncoders)
        {
            Assert.Contains(encoder.Component, verdict.Components);
            var token = file.Tensors.Single(t => t.Name.StartsWith(encoder.Prefix, StringComparison.Ordinal) && t.Name.EndsWith("token_embedding.weight", StringComparison.Ordinal));
            Assert.Equal(encoder.Width, token.Shape[1]);
        }
        Assert.Equal(architecture.TextEncoders.Count, verdict.Components.Count(c => c.StartsWith("text_encoder", StringComparison.Ordinal)));

        // Widths: cross-attention context, ADM input, first-block channels, input channels.
        var toK = file.Tensors.First(t => t.Name.EndsWith("attn2.to_k.weight", StringComparison.Ordinal));
        Assert.Equal(architecture.ContextWidth, (int)toK.Shape[1]);
        Assert.Equal(architecture.TextEncoders.Sum(e => e.Width), architecture.ContextWidth);
        var convIn = names[architecture.DenoiserPrefix + "input_blocks.0.0.weight"];
        Assert.Equal(architecture.InputChannels, (int)convIn.Shape[1]);
        Assert.Equal(architecture.ModelChannels, (int)convIn.Shape[0]);
        Assert.Equal(architecture.AdmInputWidth, names.TryGetValue(architecture.DenoiserPrefix + "label_emb.0.0.weight", out var adm) ? (int)adm.Shape[1] : null);
        var projIn = file.Tensors.First(t => t.Name.EndsWith("proj_in.weight", StringComparison.Ordinal));
        Assert.Equal(architecture.LinearTransformerProjection, projIn.Rank == 2);
        Assert.Equal(architecture.LatentChannels, names[architecture.VaePrefix + "quant_conv.weight"].Shape[0] / 2);

        // Merge blocks: the U-Net has exactly the input and output blocks the layout names.
        Assert.NotNull(architecture.MergeBlocks);
        Assert.Equal(architecture.MergeBlocks!.InputBlocks, CountBlocks(file, architecture.DenoiserPrefix + "input_blocks."));
        Assert.Equal(architecture.MergeBlocks.OutputBlocks, CountBlocks(file, architecture.DenoiserPrefix + "output_blocks."));
    }

    [Fact]
    public void The_reference_sd15_inventories_are_sd1_in_both_layouts()
    {
        var single = ModelClassifier.Classify(InMemoryModelFile.From(KeySet.Of(ReferenceTsv.Load("sd15_single_file.tsv"))));
        Assert.Same(ModelArchitectures.Sd1, ModelArchitectures.Of(single));
        var diffusers = ModelClassifier.Classify(InMemoryModelFile.From(KeySet.Of(CheckpointKeySets.SD15Diffusers()), ModelFormat.Diffusers));
        Assert.Same(ModelArchitectures.Sd1, ModelArchitectures.Of(diffusers));
    }

    [Theory]
    [InlineData("tiny_sd1.safetensors", "SD1")]
    [InlineData("tiny_sd2v.safetensors", "SD2")]
    [InlineData("tiny_sdxl.safetensors", "SDXL")]
    [InlineData("ext/tiny_sd1_inpaint.safetensors", "SD1 (inpaint)")]
    public void The_tiny_goldens_are_their_architectures(string file, string name)
    {
        using var model = ModelFileReader.Open(TestPaths.GoldenFile(file));
        Assert.Same(Named(name), ModelArchitectures.Of(ModelClassifier.Classify(model)));
    }

    [Fact]
    public void Sd3_and_flux_transformers_are_recognised_but_not_generated()
    {
        var sd3 = ModelClassifier.Classify(InMemoryModelFile.From(KeySet.Of(CheckpointKeySets.SD3Transformer())));
        Assert.Same(ModelArchitectures.Sd3, ModelArchitectures.Of(sd3));
        var flux = ModelClassifier.Classify(InMemoryModelFile.From(KeySet.Of(CheckpointKeySets.FluxTransformer())));
        Assert.Same(ModelArchitectures.Flux, ModelArchitectures.Of(flux));
        Assert.False(ModelArchitectures.Sd3.CanGenerate);
        Assert.False(ModelArchitectures.Flux.CanGenerate);
        Assert.Equal("transformer", ModelArchitectures.Flux.DenoiserComponent);
    }

    [Fact]
    public void Names_and_lookups_are_unique_per_family()
    {
        Assert.Equal(Enum.GetValues<BaseFamily>().Length, ModelArchitectures.Families.Count);
        Assert.Equal(ModelArchitectures.Families.Count, ModelArchitectures.Families.Select(a => a.WireName).Distinct().Count());
        Assert.Equal(ModelArchitectures.All.Count, ModelArchitectures.All.Select(a => a.DisplayName).Distinct().Count());
        foreach (var family in Enum.GetValues<BaseFamily>())
        {
            Assert.Equal(family, ModelArchitectures.Of(family).Family);
            if (ModelArchitectures.Of(family).ContextWidth is int width) Assert.Equal(family, ModelArchitectures.FamilyOfContextWidth(width));
        }
        Assert.Equal("sdxl_refiner", BaseFamily.SDXLRefiner.WireName());
        Assert.Equal("SDXL refiner", BaseFamily.SDXLRefiner.DisplayName());
    }

    [Theory]
    [InlineData(new[] { 768, 1024 }, new[] { BaseFamily.SD1, BaseFamily.SD2 })] // inspect said SD2, generate "unknown": now one rule
    [InlineData(new[] { 320, 640, 768, 1280 }, new[] { BaseFamily.SD1 })]      // legacy A1111 layers keyed by U-Net widths too
    [InlineData(new[] { 1024 }, new[] { BaseFamily.SD2 })]
    [InlineData(new[] { 2048 }, new[] { BaseFamily.SDXL })]
    [InlineData(new[] { 32, 64 }, new BaseFamily[0])]
    public void Hypernetwork_widths_name_the_families_that_can_use_them(int[] widths, BaseFamily[] families)
    {
        Assert.Equal(families, ModelArchitectures.FamiliesOfHypernetworkWidths(widths));
    }

    [Fact]
    public void A_hypernetwork_for_two_families_is_listed_as_compatible_with_both()
    {
        var r = ModelClassifier.Classify(InMemoryModelFile.From(NetworkKeySets.Hypernetwork([768, 1024], [1, 2, 1])));
        Assert.Equal(ModelKind.Hypernetwork, r.Kind);
        Assert.Null(r.Base);
        Assert.Equal(new[] { BaseFamily.SD1, BaseFamily.SD2 }, r.CompatibleBases);
    }

    [Theory]
    [InlineData("stable-diffusion-xl-v1-refiner", BaseFamily.SDXLRefiner)]
    [InlineData("stable-diffusion-xl-v1-base", BaseFamily.SDXL)]
    [InlineData("sdxl_base_v1-0", BaseFamily.SDXL)]
    [InlineData("stable-diffusion-v2-768-v", BaseFamily.SD2)]
    [InlineData("sd_v1", BaseFamily.SD1)]
    [InlineData("stable-diffusion-v3-medium", BaseFamily.SD3)]
    [InlineData("flux-1-dev", BaseFamily.Flux)]
    public void Metadata_names_give_the_family(string name, BaseFamily family)
    {
        Assert.Equal(family, ModelArchitectures.FamilyOfMetadataName(name));
    }

    [Fact]
    public void Text_encoder_sets_name_a_family_only_when_they_can()
    {
        Assert.Equal(BaseFamily.SDXL, ModelArchitectures.FamilyOfTextEncoders([TextEncoderKind.ClipL, TextEncoderKind.OpenClipBigG]).Family);
        Assert.Equal(BaseFamily.SD2, ModelArchitectures.FamilyOfTextEncoders([TextEncoderKind.OpenClipH]).Family);
        Assert.Equal(BaseFamily.Flux, ModelArchitectures.FamilyOfTextEncoders([TextEncoderKind.ClipL, TextEncoderKind.T5Xxl]).Family);
        var lone = ModelArchitectures.FamilyOfTextEncoders([TextEncoderKind.ClipL]);
        Assert.Null(lone.Family);
        Assert.Equal(new[] { BaseFamily.SD1, BaseFamily.SDXL, BaseFamily.SD3, BaseFamily.Flux }, lone.Compatible);
    }

    [Fact]
    public void Only_sd2_has_eps_and_v_models_with_the_same_weights()
    {
        Assert.Equal(new[] { BaseFamily.SD2 }, Enum.GetValues<BaseFamily>().Where(ModelArchitectures.PredictionAmbiguous));
        Assert.Same(ModelArchitectures.Sd2V, ModelArchitectures.Of(BaseFamily.SD2, 4, PredictionType.V));
    }

    private static int CountBlocks(IModelFile file, string prefix) => file.Tensors
        .Where(t => t.Name.StartsWith(prefix, StringComparison.Ordinal))
        .Select(t => int.Parse(t.Name.AsSpan(prefix.Length, t.Name.IndexOf('.', prefix.Length) - prefix.Length), System.Globalization.CultureInfo.InvariantCulture))
        .Distinct().Count();
}
