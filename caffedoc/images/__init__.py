"""Building and verifying the verification images (`caffedoc docker --build`): the engine
that is present, the build context, a base image made locally where no registry answers,
and the run that proves each image and reports it (text, JUnit)."""
