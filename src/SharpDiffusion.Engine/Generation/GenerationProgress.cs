namespace SharpDiffusion.Engine.Generation;

/// <summary>
/// One sampler step of a job: <see cref="Step"/> runs 1..<see cref="TotalSteps"/> within batch iteration
/// <see cref="Iteration"/> (0-based, of <see cref="IterationCount"/>). <see cref="Elapsed"/> counts from the job's
/// start (model load included); <see cref="Eta"/> extrapolates the time since loading over the steps done. Reported synchronously on the thread running the job,
/// after the step's model evaluation, so a handler that interrupts stops the job right there.
/// </summary>
public sealed record GenerationProgress(int Iteration, int IterationCount, int Step, int TotalSteps, TimeSpan Elapsed, TimeSpan Eta)
{
    /// <summary>Fraction of the whole job done, in (0, 1].</summary>
    public double Fraction => (Iteration * (double)TotalSteps + Step) / ((double)IterationCount * TotalSteps);
}
