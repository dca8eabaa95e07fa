using SharpDiffusion.Formats;
using SharpDiffusion.Inspection;
using SharpDiffusion.Tests.Fixtures;
using SharpDiffusion.Tests.Fixtures.KeySets;

namespace SharpDiffusion.Tests.Classification;

/// <summary>Truncated, reshaped or mixed key sets must yield a verdict with evidence, never an exception.</summary>
public class RobustnessTests
{
    private static IEnumerable<List<KeyEntry>> Sources()
    {
        yield return CheckpointKeySets.SD15();
        yield return CheckpointKeySets.SDXL();
        yield return LoraKeySets.ReferenceSD15().Entries;
        yield return LoraKeySets.Kohya(LoraModules.SDXL(), "lokr", sdxl: true).Entries;
        yield return NetworkKeySets.ControlNet(LdmUnetConfig.SD15).Entries;
        yield return NetworkKeySets.Hypernetwork(new[] { 768 }, new[] { 1.0, 2, 1 }).Entries;
        yield return NetworkKeySets.EsrganOld(2).Entries;
    }

    [Fact]
    public void TruncatedAndFlattenedKeySetsStillGetAVerdict()
    {
        int verdicts = 0;
        foreach (var keys in Sources())
        {
            foreach (var take in new[] { 1, 2, 3, 5, 17, keys.Count / 3, keys.Count - 1 })
            {
                foreach (var variant in new[]
                {
                    keys.Take(take).ToList(),
                    keys.Skip(take).ToList(),
                    keys.Take(take).Select(e => e with { Shape = Array.Empty<long>() }).ToList(),
                    keys.Take(take).Select(e => e with { Shape = new long[] { 3 } }).ToList(),
                })
                {
                    var r = ModelClassifier.Classify(new InMemoryModelFile(variant.Select(e => e.ToTensorInfo())));
                    Assert.NotEmpty(r.Evidence);
                    Assert.Equal(variant.Count, r.Tensors);
                    verdicts++;
                }
            }
        }
        Assert.Equal(7 * 7 * 4, verdicts);
    }

    [Fact]
    public void TagFrequencyGivesTriggerWordsForCheckpointsToo()
    {
        var set = KeySet.Of(CheckpointKeySets.SD15(TensorDType.F16)).WithMetadata("ss_tag_frequency", "{\"1_a\": {\"castle\": 3, \"moat\": 5}}");
        var r = ModelClassifier.Classify(set.ToFile());
        Assert.Equal(ModelKind.Checkpoint, r.Kind);
        Assert.Equal(new[] { "moat", "castle" }, r.TriggerWords);
    }

    [Fact]
    public void MalformedMetadataIsIgnored()
    {
        var set = LoraKeySets.ReferenceSD15().WithMetadata("ss_tag_frequency", "{not json").WithMetadata("ss_network_args", "[1,2")
            .WithMetadata("layer_structure", "oops");
        var r = ModelClassifier.Classify(set.ToFile());
        Assert.Equal(ModelKind.Lora, r.Kind);
        Assert.Empty(r.TriggerWords);
    }

    [Fact]
    public void Sd3KohyaLora()
    {
        var set = new KeySet();
        for (int i = 0; i < 4; i++)
        {
            set.Add($"lora_unet_joint_blocks_{i}_x_block_attn_qkv.lora_down.weight", TensorDType.F16, 16, 1536);
            set.Add($"lora_unet_joint_blocks_{i}_x_block_attn_qkv.lora_up.weight", TensorDType.F16, 4608, 16);
        }
        var r = ModelClassifier.Classify(set.ToFile());
        Assert.Equal(ModelKind.Lora, r.Kind);
        Assert.Equal(BaseFamily.SD3, r.Base);
        Assert.Equal(4, r.Lora!.Modules);
        ClassificationAssert.EvidenceMentions(r, "joint_blocks");
    }
}
